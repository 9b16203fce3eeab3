"""A stand-in for the TRE's side of the release contract, for register and usage-report tests.

For each release the TRE appends a ``release`` ledger entry and writes, in
``<home>/tre/releases``, ``<release_id>.contributors`` and ``<release_id>.excluded``: the
sorted, unique, raw 32-byte ``SHA-256(release_id ":" hub_pseudonym)`` digests, concatenated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confide.common.home import Home
from confide.ledger.log import Ledger


def releases_folder(home: Home) -> Path:
    folder = home.party("tre") / "releases"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def member_file(release_id: str, pseudonyms: Iterable[str]) -> bytes:
    digests = {hashlib.sha256(f"{release_id}:{p}".encode()).digest() for p in pseudonyms}
    return b"".join(sorted(digests))


def release_body(release_id: str, patients: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "release_id": release_id,
        "project_id": "P-0001",
        "organisation": "University of Leeds",
        "purpose": "research",
        "recipient_kind": "academic",
        "legal_basis": "public_task",
        "data_form": "aggregate",
        "datasets": ["gp_events", "gp_patients"],
        "patients": patients,
        "opt_outs_applied": True,
        "date": "2025-03-01",
    }
    body.update(overrides)
    return body


def publish_release(
    ledger: Ledger,
    folder: Path,
    release_id: str,
    *,
    contributors: Iterable[str],
    excluded: Iterable[str] = (),
    files: bool = True,
    **overrides: Any,
) -> int:
    """Do what the TRE does for one release; the log index of its ``release`` entry."""
    contributors = list(contributors)
    index = ledger.append("release", release_body(release_id, len(set(contributors)), **overrides))
    if files:
        (folder / f"{release_id}.contributors").write_bytes(member_file(release_id, contributors))
        (folder / f"{release_id}.excluded").write_bytes(member_file(release_id, excluded))
    return index


def apply_project(ledger: Ledger, project_id: str, title: str, **overrides: Any) -> int:
    body = {
        "project_id": project_id,
        "organisation": "University of Leeds",
        "title": title,
        "purpose": "research",
        "recipient_kind": "academic",
        "legal_basis": "public_task",
        "datasets": ["gp_events", "gp_patients"],
    }
    body.update(overrides)
    return ledger.append("project_applied", body)
