"""The auditor's check of a whole log: recompute everything, trust nothing but the pinned key.

:func:`verify` reads the log from a :class:`~confide.ledger.sources.Source` (the public HTTP
API, or a local ``--home``). It pins the log's origin and signing key the first time it checks
the log at that place (or as given), and from then on any other origin or key there is
tampering. It checks the latest checkpoint's signature, and, when asked, that a quorum of named
witnesses cosigned it; re-hashes every entry into the Merkle tree; and checks the recomputed
tree head at every size for which it has seen a signed checkpoint before (kept in the auditor's
state file, :mod:`confide.ledger.auditor_state`), asking the log for consistency proofs and
testing them too. Locally it also checks that every entry is covered by a signed checkpoint.
Any difference means the log was edited, had entries deleted, reordered or inserted, or had its
history rewritten, forked, rolled back or split, and is reported as such; the state file is
only updated when all is well.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confide.common import exit_codes
from confide.common.errors import ConfideError, InvalidInput
from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.ledger.auditor_state import load_state, log_state, save_state
from confide.ledger.cosignature import CosignatureVerifier
from confide.ledger.log import Ledger
from confide.ledger.sources import PAGE, HttpSource, LocalSource, Source

__all__ = ["HttpSource", "LocalSource", "Source", "TamperDetected", "verify"]

SAMPLED_PROOFS = 8


class TamperDetected(ConfideError):
    """The log does not match its own signed checkpoints or an earlier one."""

    exit_code = exit_codes.LOG_TAMPERED


@dataclass(frozen=True)
class Expectations:
    """What the auditor requires beyond the log's own consistency."""

    key: str | None = None  # the log's verifier key, as given (else as pinned on first check)
    origin: str | None = None  # the log's origin, as given (else as pinned on first check)
    witnesses: Sequence[CosignatureVerifier] = ()
    quorum: int = 0  # how many of ``witnesses`` must have cosigned the latest checkpoint

    def __post_init__(self) -> None:
        if self.quorum > len(self.witnesses):
            raise InvalidInput(
                f"A quorum of {self.quorum} needs at least that many witnesses named "
                f"({len(self.witnesses)} given)."
            )
        if self.quorum < 0 or (self.witnesses and self.quorum == 0):
            raise InvalidInput("A quorum of witnesses is at least 1.")


# --- the check --------------------------------------------------------------------------------


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(message)

    def result(self, **fields: Any) -> dict[str, Any]:
        return {"ok": not self.problems, **fields, "problems": self.problems, "notes": self.notes}


class LeafHashes:
    """Every leaf hash of the log, packed into one buffer (32 bytes each)."""

    def __init__(self) -> None:
        self.blob = bytearray()

    def append(self, h: bytes) -> None:
        self.blob += h

    def __len__(self) -> int:
        return len(self.blob) // 32

    def __getitem__(self, i: int) -> bytes:
        if not 0 <= i < len(self):
            raise IndexError(i)
        return bytes(self.blob[i * 32 : i * 32 + 32])


def _recompute(
    rows: Iterator[tuple[int, bytes]], size: int, wanted: set[int], found: Findings
) -> tuple[dict[int, bytes], LeafHashes]:
    """Roots at every size in ``wanted`` (and ``size``) from the entries; the leaf hashes."""
    frontier: list[bytes] = []
    roots = {0: merkle.EMPTY_ROOT}
    leaf_hashes = LeafHashes()
    n = 0
    for index, data in rows:
        if index != n:
            what = "missing (deleted?)" if index > n else "duplicated or out of order"
            found.fail(f"Entry {n} is {what}: the next entry served has index {index}.")
            return roots, leaf_hashes
        lh = merkle.leaf_hash(data)
        leaf_hashes.append(lh)
        merkle.append_leaf(frontier, n, lh)
        n += 1
        if n in wanted:
            roots[n] = merkle.fold_right(frontier)
    if n < size:
        found.fail(f"The log served {n} entries but its checkpoint says {size}.")
    roots[n] = merkle.fold_right(frontier)
    return roots, leaf_hashes


def _stream(source: Source, size: int) -> Iterator[tuple[int, bytes]]:
    start = 0
    while start < size:
        page = source.entries(start, min(size, start + PAGE * 10))
        if not page:
            return
        yield from page
        start = page[-1][0] + 1


def verify(
    source: Source,
    state_path: Path | None,
    pinned_key: str | None = None,
    local: Ledger | None = None,
    rng: random.Random | None = None,
    expect: Expectations | None = None,
) -> dict[str, Any]:
    """Check the whole log; a report whose ``problems`` list every sign of tampering."""
    expect = expect or Expectations()
    found = Findings()
    state = load_state(state_path)
    note = source.checkpoint()
    try:
        claimed, _ = cp.parse(note)
    except cp.CheckpointError as exc:
        found.fail(f"The latest checkpoint cannot be read: {exc.message}")
        return found.result()
    address = source.address()
    remembered = log_state(state, address, claimed.origin)
    verifier = _pinned_identity(source, expect.key or pinned_key, expect.origin, remembered, found)
    origin = expect.origin or (remembered or {}).get("origin") or claimed.origin
    if claimed.origin != origin:
        found.fail(
            f"The log at {address} now calls itself '{claimed.origin}', but this auditor pinned "
            f"'{origin}': a log that changes its origin is a new history passed off as this one."
        )
    head: cp.Checkpoint | None = None
    try:
        head = cp.verify(note, verifier)
    except cp.CheckpointError as exc:
        found.fail(f"The latest checkpoint cannot be trusted: {exc.message}")
    if found.problems or head is None:
        return found.result(origin=claimed.origin, verifier_key=verifier.vkey)
    if remembered is None:
        found.notes.append(
            "First check of this log: its origin and key are now pinned in the state file."
        )
        remembered = {"origin": origin, "verifier_key": verifier.vkey, "checkpoints": []}
    cosigned = _witnessed(note, expect, found)
    seen = [
        (c["size"], bytes.fromhex(c["root"]))
        for c in remembered["checkpoints"]
        if c["size"] <= head.size
    ]
    for c in remembered["checkpoints"]:
        if c["size"] > head.size:
            found.fail(
                f"History rewritten: a checkpoint seen before had {c['size']} entries, "
                f"but the log now signs only {head.size} (a rollback or a truncation)."
            )
    stored = _stored_checkpoints(local, verifier, head.size, found) if local else []

    wanted = {s for s, _ in seen} | {s for s, _ in stored} | {head.size}
    uncovered = 0
    if local is not None:
        total = local.store.count()
        uncovered = _uncovered(total, head.size, found)
        roots, leaf_hashes = _recompute(_local_rows(local, found), total, wanted, found)
    else:
        roots, leaf_hashes = _recompute(_stream(source, head.size), head.size, wanted, found)

    if roots.get(head.size) != head.root:
        found.fail(
            f"The entries do not reproduce the signed root at size {head.size}: an entry was "
            "edited, deleted, reordered or inserted."
        )
    _check_seen(source, head, seen, roots, found)
    for size, root in stored:
        if size in roots and roots[size] != root:
            found.fail(f"The log's own checkpoint at size {size} no longer matches its entries.")
    if local is not None:
        _check_local_state(local, leaf_hashes, roots, found)
    if not found.problems:
        _sample_proofs(source, head, leaf_hashes, found, rng or random.Random())

    result = found.result(
        origin=head.origin,
        size=head.size,
        root=head.root.hex(),
        verifier_key=verifier.vkey,
        checkpoints_checked=sorted({s for s, _ in seen} | {s for s, _ in stored}),
        cosigned_by=cosigned,
        uncovered=uncovered,
    )
    if found.problems:
        return result
    known = {(c["size"], c["root"]) for c in remembered["checkpoints"]}
    if (head.size, head.root.hex()) not in known:
        remembered["checkpoints"].append(
            {"size": head.size, "root": head.root.hex(), "note": head.text}
        )
    state["logs"][address] = remembered
    if state_path is not None:
        save_state(state_path, state)
    return result


def _check_seen(
    source: Source,
    head: cp.Checkpoint,
    seen: list[tuple[int, bytes]],
    roots: dict[int, bytes],
    found: Findings,
) -> None:
    """Every checkpoint seen before must still be the log's tree at its size, and the log must
    prove the latest extends it."""
    for size, root in seen:
        if size == head.size and root != head.root:
            found.fail(
                f"Split view: this log showed a checkpoint of {size} entries with another root "
                "before. Two histories of the same size are signed; at most one is real."
            )
        elif size in roots and roots[size] != root:
            found.fail(
                f"History rewritten: the checkpoint seen before at size {size} does not match "
                "the log's entries now."
            )
        try:
            proof = source.consistency(size, head.size)
            merkle.verify_consistency(size, head.size, root, head.root, proof)
        except (merkle.ProofError, ConfideError) as exc:
            found.fail(
                f"No valid consistency proof from the checkpoint seen at size {size} to the "
                f"latest at {head.size} ({exc}): the history was rewritten."
            )


def _pinned_identity(
    source: Source,
    key: str | None,
    origin: str | None,
    remembered: dict[str, Any] | None,
    found: Findings,
) -> cp.Verifier:
    """The key to check the log with: as given, else as pinned on the first check, else (on a
    first check) the one the log serves. Any disagreement between them is a finding."""
    given = cp.Verifier.parse(key) if key else None
    pinned = cp.Verifier.parse(remembered["verifier_key"]) if remembered else None
    if given and pinned and given != pinned:
        found.fail("The key given is not the key this auditor pinned for this log before.")
    if origin and remembered and remembered.get("origin") not in (None, origin):
        found.fail("The origin given is not the origin this auditor pinned for this log before.")
    try:
        served = cp.Verifier.parse(source.verifier_key())
    except cp.CheckpointError:
        served = None
        found.fail("The log serves a signing key that cannot be read.")
    expected = given or pinned
    if expected is not None and served is not None and served != expected:
        found.fail(
            "The log now serves a different signing key from the one pinned: a new key for the "
            "same log is a new history passed off as this one."
        )
    verifier = expected or served
    if verifier is None:
        raise InvalidInput("The log's signing key cannot be read, and none was given (--key).")
    return verifier


def _witnessed(note: str, expect: Expectations, found: Findings) -> list[str]:
    """Names of the named witnesses whose cosignatures on ``note`` verify; short of the quorum,
    or any cosignature forged, is a finding."""
    names = []
    for witness in expect.witnesses:
        try:
            if witness.find(note) is not None:
                names.append(witness.name)
        except cp.CheckpointError as exc:
            found.fail(f"Witness {witness.name}: {exc.message}")
    if len(names) < expect.quorum:
        found.fail(
            f"The latest checkpoint is cosigned by {len(names)} of the witnesses named, and "
            f"{expect.quorum} are required: without them a split view or a fork cannot be "
            "ruled out, so this checkpoint cannot be trusted."
        )
    return names


def _uncovered(total: int, size: int, found: Findings) -> int:
    """Entries stored beyond the latest checkpoint; every append is signed as it commits, so
    any such entry was written behind the log's back. (Fewer is a deletion.)"""
    if total < size:
        found.fail(
            f"The log holds {total} entries but its checkpoint says {size}: entries were deleted."
        )
    extra = max(0, total - size)
    if extra:
        found.fail(
            f"{extra} entries after the latest checkpoint (of {size} entries) are covered by no "
            "signed checkpoint: the log signs every append as it commits, so they were written "
            "behind its back."
        )
    return extra


def _local_rows(ledger: Ledger, found: Findings) -> Iterator[tuple[int, bytes]]:
    """Entries from the store, checking each stored leaf hash against its bytes on the way."""
    for index, data, stored_hash in ledger.store.iter_rows():
        if merkle.leaf_hash(data) != stored_hash:
            found.fail(f"Entry {index} does not match its stored leaf hash: it was edited.")
        yield index, data


def _stored_checkpoints(
    ledger: Ledger, verifier: cp.Verifier, size: int, found: Findings
) -> list[tuple[int, bytes]]:
    out = []
    for stored in ledger.store.checkpoints():
        try:
            checkpoint = cp.verify(stored.note, verifier)
        except cp.CheckpointError as exc:
            found.fail(f"A stored checkpoint fails its signature check: {exc.message}")
            continue
        if checkpoint.size != stored.size or checkpoint.root != stored.root:
            found.fail(f"The stored checkpoint at size {stored.size} was altered.")
        if checkpoint.size <= size:
            out.append((checkpoint.size, checkpoint.root))
    return out


def _check_local_state(
    ledger: Ledger, leaf_hashes: LeafHashes, roots: dict[int, bytes], found: Findings
) -> None:
    """The tree state row and stored subtree hashes must equal what the entries give."""
    count = len(leaf_hashes)
    head = ledger.store.head()
    if head.size != count:
        found.fail(
            f"The store holds {count} entries but its tree state says {head.size}: entries were "
            "inserted or deleted behind the log's back."
        )
    elif roots.get(count) != head.root:
        found.fail("The stored tree head does not match the entries.")
    levels = [bytes(leaf_hashes.blob)]
    while len(levels[-1]) >= 64:
        below = levels[-1]
        levels.append(
            b"".join(
                merkle.node_hash(below[i : i + 32], below[i + 32 : i + 64])
                for i in range(0, len(below) - 63, 64)
            )
        )
    bad = seen = 0
    for subtree in ledger.store.iter_nodes():
        seen += 1
        blob = levels[subtree.level] if 0 < subtree.level < len(levels) else b""
        if blob[subtree.position * 32 : subtree.position * 32 + 32] != subtree.hash:
            bad += 1
    missing = sum(len(b) // 32 for b in levels[1:]) - (seen - bad)
    bad += missing
    if bad:
        found.fail(f"{bad} stored subtree hash(es) do not match the entries (proofs would lie).")


def _sample_proofs(
    source: Source,
    head: cp.Checkpoint,
    leaf_hashes: LeafHashes,
    found: Findings,
    rng: random.Random,
) -> None:
    """Ask for a few inclusion proofs and check them: the log's proofs must work too."""
    size = head.size
    if size == 0:
        return
    picks = {0, size - 1} | {rng.randrange(size) for _ in range(SAMPLED_PROOFS)}
    for index in sorted(picks):
        lh = leaf_hashes[index]
        try:
            got, path = source.inclusion(lh, size)
            if leaf_hashes[got] != lh:
                raise merkle.ProofError(f"the log points to entry {got}, which is another entry")
            merkle.verify_inclusion(got, size, lh, path, head.root)
        except (merkle.ProofError, ConfideError, IndexError) as exc:
            found.fail(f"The log's inclusion proof for entry {index} is wrong: {exc}")
