"""The patient's data usage report: which releases used their data, which left them out.

Runs at the choices + pseudonymiser side, for a person who passed the identity check. The
pseudonymiser turns the NHS number into the person's hub pseudonym; nothing about the person
goes any further. For every ``release`` entry in the log the TRE publishes three files (the
contract with the TRE, see :mod:`confide.tre.service`)::

    <home>/tre/releases/<release_id>.salt
    <home>/tre/releases/<release_id>.contributors
    <home>/tre/releases/<release_id>.excluded

the salt (32 hex digits, random per cohort; the release id for releases made before salts were
published) and two files of sorted, unique, raw 32-byte ``SHA-256(salt ":" hub_pseudonym)``
digests (UTF-8 text in), concatenated: everyone whose data was in the views used, and everyone left
out by their choices. The report reads *every file of every release*, whoever is asking (and
also when the person is unknown), and tests membership locally. The log is read whole at its
latest signed checkpoint (:class:`~confide.usage.proofs.LogSnapshot`). So the hub, the TRE's
file server and the log's server see exactly the same requests for every person: nothing tells
them who asked, or what the answer was.

Each item carries an inclusion proof of its ``release`` entry against the signed checkpoint,
verified before it is reported. With ``choices`` and ``salts`` the report also lists the
person's own ``choice_changed`` and ``erasure`` entries, recognised by their commitments.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from confide.choices.model import Choice, ChoiceEvent
from confide.common import nhs_number as nhs
from confide.common.errors import InvalidInput
from confide.ledger import checkpoint as cp
from confide.ledger.commitments import commitment_for, erasure_commitment
from confide.ledger.entries import Entry, EntryRejected, decode
from confide.usage.proofs import InclusionProof, LedgerReader, LogSnapshot
from confide.usage.salts import SaltStore

DIGEST_SIZE = 32
CONTRIBUTORS = "contributors"
EXCLUDED = "excluded"
SALT = "salt"
_SALT = re.compile(r"^[0-9a-f]{32}$")


class PseudonymLookup(Protocol):
    """The pseudonymiser's lookup (``Pseudonymiser.pseudonyms_for``)."""

    def pseudonyms_for(self, nhs_numbers: list[str]) -> list[str | None]: ...


class ChoiceHistory(Protocol):
    """The choices registry's history of one person (``ChoicesRegistry.history``)."""

    def history(self, nhs_number: str) -> list[ChoiceEvent]: ...


class ReleaseFiles(Protocol):
    """Where the TRE's per-release membership files are read from."""

    def read(self, name: str) -> bytes | None:
        """The bytes of file ``name``, or None when it does not exist."""
        ...


class FolderReleaseFiles:
    """Release files in a folder (``<home>/tre/releases``); names outside it are refused."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).resolve()

    def read(self, name: str) -> bytes | None:
        path = (self.folder / name).resolve()
        if path.parent != self.folder or not path.is_file():
            return None
        return path.read_bytes()


def membership_digest(salt: str, hub_pseudonym: str) -> bytes:
    """``SHA-256(salt ":" hub_pseudonym)``: one person's line in one release's files."""
    return hashlib.sha256(f"{salt}:{hub_pseudonym}".encode()).digest()


def release_salt(release_id: str, published: bytes | None) -> str | None:
    """The salt of a release's files: its published ``.salt`` (the cohort's), or the release
    id for releases made before salts were published; None when the salt file is damaged."""
    if published is None:
        return release_id
    text = published.decode("ascii", "replace").strip()
    return text if _SALT.match(text) else None


def parse_members(data: bytes) -> np.ndarray:
    """A membership file as a sorted array of 32-byte digests; InvalidInput if malformed."""
    if len(data) % DIGEST_SIZE:
        raise InvalidInput("A release membership file is not a whole number of 32-byte digests.")
    members = np.frombuffer(data, dtype=f"S{DIGEST_SIZE}")
    # Fixed-width byte strings compare like raw bytes, so this checks strict sorted order.
    if len(members) > 1 and not bool(np.all(members[1:] > members[:-1])):
        raise InvalidInput("A release membership file is not sorted and unique.")
    return members


def is_member(members: np.ndarray, digest: bytes) -> bool:
    at = int(np.searchsorted(members, digest))
    return at < len(members) and bytes(members[at]).ljust(DIGEST_SIZE, b"\0") == digest


@dataclass(frozen=True)
class ReleaseItem:
    """One release the person was in, or was left out of because of their choices."""

    status: str  # included | excluded
    release_id: str
    project_id: str
    project_title: str | None
    organisation: str
    purpose: str
    recipient_kind: str
    legal_basis: str
    data_form: str
    date: str
    proof: InclusionProof

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "proof"}
        out["proof"] = self.proof.as_dict()
        return out


@dataclass(frozen=True)
class OwnEntry:
    """One of the person's own choice changes (or erasures) as the log records it."""

    kind: str  # choice_changed | erasure
    logged_at: str
    body: dict[str, Any]
    proof: InclusionProof

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "logged_at": self.logged_at,
            "body": self.body,
            "proof": self.proof.as_dict(),
        }


@dataclass(frozen=True)
class UsageReport:
    """Everything the log and the TRE's files say about one person's data."""

    checkpoint: cp.Checkpoint
    releases_checked: int
    included: list[ReleaseItem] = field(default_factory=list)
    excluded: list[ReleaseItem] = field(default_factory=list)
    own_entries: list[OwnEntry] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # release ids whose files were unusable

    @property
    def empty(self) -> bool:
        return not (self.included or self.excluded)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": {**self.checkpoint.as_dict(), "note": self.checkpoint.text},
            "releases_checked": self.releases_checked,
            "included": [i.as_dict() for i in self.included],
            "excluded": [i.as_dict() for i in self.excluded],
            "own_entries": [e.as_dict() for e in self.own_entries],
            "unchecked": list(self.unchecked),
        }


def usage_report(
    nhs_number: str,
    *,
    pseudonymiser: PseudonymLookup,
    ledger: LedgerReader,
    releases_folder: Path | ReleaseFiles,
    choices: ChoiceHistory | None = None,
    salts: SaltStore | None = None,
    verifier: cp.Verifier | None = None,
) -> UsageReport:
    """The usage report of the person with ``nhs_number`` (who has passed the identity check).

    ``verifier`` pins the ledger's checkpoint key (default: the key the ledger reports).
    Raises ``TamperDetected`` when the log does not match its signed checkpoint.
    """
    reason = nhs.why_invalid(nhs_number)
    if reason:
        raise InvalidInput(f"{reason}.", hint="Check the 10-digit NHS number and enter it again.")
    number = nhs.normalise(nhs_number) or ""
    files = (
        FolderReleaseFiles(releases_folder)
        if isinstance(releases_folder, str | Path)
        else releases_folder
    )
    pseudonym = pseudonymiser.pseudonyms_for([number])[0]
    snapshot = LogSnapshot.take(ledger, verifier)
    entries = [_decoded(i, data) for i, data in snapshot.entries]

    titles: dict[str, str] = {}
    found: dict[str, list[ReleaseItem]] = {"included": [], "excluded": []}
    unchecked: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        if entry is None:
            continue
        if entry.kind == "project_applied":
            titles.setdefault(entry.body["project_id"], entry.body["title"])
        if entry.kind != "release" or entry.body["release_id"] in seen:
            continue
        release_id = entry.body["release_id"]
        seen.add(release_id)
        # Both files of every release are read, before knowing whether the answer matters.
        raw = {part: files.read(f"{release_id}.{part}") for part in (CONTRIBUTORS, EXCLUDED)}
        salt = release_salt(release_id, files.read(f"{release_id}.{SALT}"))
        if salt is None:
            unchecked.append(release_id)
            continue
        try:
            sets = {part: parse_members(data) for part, data in raw.items() if data is not None}
        except InvalidInput:
            unchecked.append(release_id)
            continue
        if len(sets) < 2:
            unchecked.append(release_id)
            continue
        if pseudonym is None:
            continue
        digest = membership_digest(salt, pseudonym)
        status = (
            "included"
            if is_member(sets[CONTRIBUTORS], digest)
            else "excluded"
            if is_member(sets[EXCLUDED], digest)
            else None
        )
        if status is not None:
            found[status].append(_item(status, entry, titles, snapshot.proof(entry.index)))

    return UsageReport(
        snapshot.head,
        len(seen),
        found["included"],
        found["excluded"],
        _own_entries(number, entries, snapshot, choices, salts),
        unchecked,
    )


def _decoded(index: int, data: bytes) -> Entry | None:
    try:
        return decode(index, data)
    except EntryRejected:
        return None  # not an entry of ours (a raw test leaf): nothing to report from it


def _item(status: str, entry: Entry, titles: dict[str, str], proof: InclusionProof) -> ReleaseItem:
    b = entry.body
    return ReleaseItem(
        status=status,
        release_id=b["release_id"],
        project_id=b["project_id"],
        project_title=titles.get(b["project_id"]),
        organisation=b["organisation"],
        purpose=b["purpose"],
        recipient_kind=b["recipient_kind"],
        legal_basis=b["legal_basis"],
        data_form=b["data_form"],
        date=b["date"],
        proof=proof,
    )


def _own_entries(
    number: str,
    entries: list[Entry | None],
    snapshot: LogSnapshot,
    choices: ChoiceHistory | None,
    salts: SaltStore | None,
) -> list[OwnEntry]:
    """The person's ``choice_changed`` and ``erasure`` entries, found by recomputing their
    commitments (only the choices party, holding the secret and the change ids, can)."""
    if choices is None or salts is None:
        return []
    secret = salts.existing(number)
    if secret is None:
        return []
    history = choices.history(number)
    wanted = {commitment_for(secret, e.change_id, "choice_changed") for e in history}
    wanted |= {
        erasure_commitment(secret, e.change_id)
        for e in history
        if e.changes.get(Choice.SHARE_NOTHING)
    }
    return [
        OwnEntry(e.kind, e.at, e.body, snapshot.proof(e.index))
        for e in entries
        if e is not None
        and e.kind in ("choice_changed", "erasure")
        and e.body["commitment"] in wanted
    ]
