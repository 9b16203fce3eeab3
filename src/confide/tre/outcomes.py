"""What is said about a query: the TRE's ledger entries and public text, and the outcome the
researcher gets back, shaped in one place for the query service and the review queue.

``query_run`` is written when a query starts (before anything runs), so every query that ran
is in the log whatever happens next; ``output_checked`` and ``release`` or ``refusal`` follow
with the outcome (``review_vote`` entries too, once checkers have decided a held output). Text
that goes public is checked here: short, printable, no identifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from confide.access.model import ProjectGrant
from confide.choices.policy import Terms
from confide.common import canonical
from confide.common.clock import utcnow
from confide.ledger.entries import find_identifiers, loggable_sql
from confide.tre.disclosure import round_to
from confide.tre.store import QueryRecord, Vote

_PUBLIC_TEXT_MAX = 500


class Entry(NamedTuple):
    """One ledger entry to append: its kind and its body."""

    kind: str
    body: dict[str, Any]


class Privacy(NamedTuple):
    """The privacy loss of a differentially private output."""

    epsilon: float
    delta: float


class OutputCheck(NamedTuple):
    """How an output was checked, as ``output_checked`` records it: the method, the cells it
    suppressed (none recorded for a checkers' review) and the privacy loss (DP outputs)."""

    method: str
    suppressed: int | None = None
    privacy: Privacy | None = None


@dataclass
class QueryOutcome:
    """What the researcher gets back. ``result`` is set only for released outputs."""

    id: str
    project: str
    mode: str
    status: str
    reason: str | None
    result: dict[str, Any] | None
    labels: list[dict[str, Any]] = field(default_factory=list)
    budget_left: float | None = None
    release_id: str | None = None
    definition: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "mode": self.mode,
            "status": self.status,
            "reason": self.reason,
            "result": self.result,
            "labels": self.labels,
            "budget_left": self.budget_left,
            "release_id": self.release_id,
            "definition": self.definition,
        }


def query_outcome(
    record: QueryRecord, result: dict[str, Any] | None, budget_left: float | None
) -> QueryOutcome:
    """The researcher's view of a stored query: ``result`` only when it is released."""
    labels = list((result or {}).get("labels") or [])
    return QueryOutcome(
        id=record.id,
        project=record.project_slug,
        mode=record.mode,
        status=record.status,
        reason=record.reason,
        result=result,
        labels=labels,
        budget_left=budget_left,
        release_id=record.release_id if record.status == "released" else None,
        definition=record.definition,
    )


def history_item(record: QueryRecord) -> dict[str, Any]:
    """One line of a project's query history (never its result)."""
    return {
        "id": record.id,
        "sql": record.sql_text,
        "mode": record.mode,
        "status": record.status,
        "reason": record.reason,
        "created_at": record.created_at,
    }


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
    return Entry("query_run", body)


def checked_entry(record: QueryRecord, outcome: str, check: OutputCheck) -> Entry:
    """``output_checked``: whether the output passed, and how it was checked."""
    body: dict[str, Any] = {
        "project_id": record.project_slug,
        "output_id": record.id,
        "outcome": outcome,
        "method": check.method,
    }
    if check.suppressed is not None:
        body["cells_suppressed"] = check.suppressed
    if check.privacy is not None:
        body["epsilon"], body["delta"] = check.privacy
    return Entry("output_checked", body)


def refusal_entry(
    record: QueryRecord,
    reason: str,
    *,
    subject: str = "query",
    fallback: str = "refused (the reason is kept by the TRE)",
) -> Entry:
    """``refusal`` of a query (or of a held output): the reason where it may be public."""
    return Entry(
        "refusal",
        {
            "subject": subject,
            "ref": record.id,
            "project_id": record.project_slug,
            "reason": public_text(reason, fallback),
        },
    )


def vote_entries(record: QueryRecord, votes: Sequence[Vote]) -> list[Entry]:
    """One ``review_vote`` entry per checker's vote, in order, logged only once the output is
    decided, so no checker can learn another's vote from the log before casting their own.
    Checkers are not named; a reason that cannot be public is left out."""
    entries = []
    for order, vote in enumerate(votes, start=1):
        body: dict[str, Any] = {
            "project_id": record.project_slug,
            "output_id": record.id,
            "vote": "approve" if vote.approve else "reject",
            "order": order,
        }
        reason = public_text(vote.reason, "")
        if reason:
            body["reason"] = reason
        entries.append(Entry("review_vote", body))
    return entries


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
