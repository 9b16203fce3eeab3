"""What the public log says about a query: the TRE's ledger entries and public text, shaped in
one place for the query service and the review queue.

``query_run`` is written when a query starts (before anything runs), so every query that ran
is in the log whatever happens next; ``output_checked`` and ``release`` or ``refusal`` follow
with the outcome. Text that goes public is checked here: short, printable, no identifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confide.access.model import ProjectGrant
from confide.choices.policy import Terms
from confide.common import canonical
from confide.common.clock import utcnow
from confide.ledger.entries import find_identifiers, loggable_sql
from confide.tre.disclosure import round_to
from confide.tre.store import QueryRecord

Entry = tuple[str, dict[str, Any]]
_PUBLIC_TEXT_MAX = 500


def public_text(text: str, fallback: str) -> str:
    """``text`` if it may go in the public log as is (short, printable, no identifier)."""
    clean = " ".join(str(text).split())[:_PUBLIC_TEXT_MAX]
    if not clean or not clean.isprintable() or find_identifiers(clean):
        return fallback
    return clean


def opt_outs_reason(terms: Terms) -> str:
    if not terms.opt_outs_applied:
        return f"opt-outs not applied: {terms.exemption}"
    reasons = sorted(set(terms.excluding.values()))
    return "opt-outs applied: " + ("; ".join(reasons) if reasons else "no choice covers this use")


def output_digest(result: dict[str, Any]) -> str:
    return hashlib.sha256(canonical.dumps(result)).hexdigest()


def query_entry(record: QueryRecord) -> Entry:
    """``query_run``: the query's digest, its text where it may be public, and its mode."""
    body: dict[str, Any] = {
        "project_id": record.project_slug,
        "query_id": record.id,
        "query_digest": record.sql_digest,
        "mode": record.mode,
    }
    if loggable_sql(record.sql_text):  # else only its digest is logged
        body["sql"] = record.sql_text
    return ("query_run", body)


def checked_entry(
    record: QueryRecord,
    outcome: str,
    method: str,
    suppressed: int,
    privacy: tuple[float, float] | None = None,
) -> Entry:
    body: dict[str, Any] = {
        "project_id": record.project_slug,
        "output_id": record.id,
        "outcome": outcome,
        "method": method,
        "cells_suppressed": suppressed,
    }
    if privacy is not None:
        body["epsilon"], body["delta"] = privacy
    return ("output_checked", body)


def refusal_entry(record: QueryRecord, reason: str, *, subject: str = "query") -> Entry:
    return (
        "refusal",
        {
            "subject": subject,
            "ref": record.id,
            "project_id": record.project_slug,
            "reason": public_text(reason, "refused (the reason is kept by the TRE)"),
        },
    )


def release_facts(
    grant: ProjectGrant,
    release_id: str,
    form: str,
    tables: frozenset[str],
    contributors: Path,
    terms: Terms,
) -> dict[str, Any]:
    """The public facts of a release, known before it is decided."""
    people = contributors.stat().st_size // 32
    return {
        "release_id": release_id,
        "project_id": grant.slug,
        "organisation": grant.organisation,
        "purpose": grant.purpose.value,
        "recipient_kind": grant.recipient_kind.value,
        "legal_basis": grant.legal_basis.value,
        "data_form": form,
        "datasets": sorted(tables),
        "patients": round_to(people, 5),
        "opt_outs_applied": terms.opt_outs_applied,
        "opt_outs_reason": public_text(opt_outs_reason(terms), "see the choices policy"),
    }


def release_entry(facts: Mapping[str, Any], output_id: str, result: dict[str, Any]) -> dict:
    """The ledger's ``release`` body: the stored facts, the output's id and digest, today."""
    return {
        **facts,
        "output_id": output_id,
        "output_digest": output_digest(result),
        "date": utcnow().date().isoformat(),
    }
