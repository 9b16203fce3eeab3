"""The auditor's check of a whole log: recompute everything, trust nothing but the key.

:func:`verify` reads the log from a :class:`Source` (the public HTTP API, or a local ``--home``),
checks the latest checkpoint's signature, re-hashes every entry into the Merkle tree, and checks
the recomputed tree head at every size for which it has seen a signed checkpoint before (kept in
a small JSON state file), asking the log for consistency proofs and testing them too. Any
difference means the log was edited, had entries deleted, reordered or inserted, or had its
history rewritten, and is reported as such; the state file is only updated when all is well.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from confide.common.errors import ConfideError, InvalidInput
from confide.common.secrets import write_secret
from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.ledger.log import Ledger

PAGE = 1000
SAMPLED_PROOFS = 8


class TamperDetected(ConfideError):
    """The log does not match its own signed checkpoints or an earlier one."""

    exit_code = 4


class Source(Protocol):
    """Where a verifier reads a log from."""

    def verifier_key(self) -> str: ...

    def checkpoint(self) -> str: ...

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]: ...

    def consistency(self, first: int, second: int) -> list[bytes]: ...


class HttpSource:
    """A log served by Confide's ledger API (or anything speaking the same JSON)."""

    def __init__(self, client: httpx.Client, base: str = "") -> None:
        self.client = client
        self.base = base.rstrip("/")

    @classmethod
    def at(cls, url: str) -> HttpSource:
        return cls(httpx.Client(timeout=60, follow_redirects=True), url)

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        try:
            resp = self.client.get(f"{self.base}{path}", params=params)
        except httpx.HTTPError as exc:
            raise InvalidInput(
                f"Could not reach the ledger at {self.base or 'the given address'}: "
                f"{type(exc).__name__}.",
                hint="Check the URL (it ends in /api/ledger) and your network.",
            ) from None
        if resp.status_code != 200:
            detail = (
                resp.json().get("detail", "")
                if resp.headers.get("content-type", "").startswith("application/json")
                else ""
            )
            raise InvalidInput(f"The ledger answered {resp.status_code} to {path}. {detail}")
        return resp.json()

    def verifier_key(self) -> str:
        return self._get("/public-key")["verifier_key"]

    def checkpoint(self) -> str:
        return self._get("/checkpoint")["checkpoint"]

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        while start < end:
            page = self._get("/entries", start=start, end=end)["entries"]
            if not page:
                break
            out.extend((e["index"], base64.b64decode(e["leaf_input"])) for e in page)
            start = page[-1]["index"] + 1
        return out

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]:
        doc = self._get("/proof/inclusion", leaf_hash=leaf_hash.hex(), size=size)
        return doc["index"], [bytes.fromhex(h) for h in doc["audit_path"]]

    def consistency(self, first: int, second: int) -> list[bytes]:
        doc = self._get("/proof/consistency", first=first, second=second)
        return [bytes.fromhex(h) for h in doc["consistency"]]


class LocalSource:
    """A log read straight from a ledger's operational store (an operator's own check)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def verifier_key(self) -> str:
        return self.ledger.verifier.vkey

    def checkpoint(self) -> str:
        latest = self.ledger.store.latest_checkpoint()
        if latest is None:
            raise InvalidInput(
                "This log has no signed checkpoint yet, so there is nothing to verify against.",
                hint="Sign one with 'confide ledger checkpoint', then verify.",
            )
        return latest.note

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return self.ledger.store.entries(start, end)

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]:
        return self.ledger.inclusion_proof(leaf_hash, size)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return self.ledger.consistency_proof(first, second)


# --- local state: what this auditor has seen before ----------------------------------------


def load_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"logs": {}}
    try:
        state = json.loads(path.read_text())
    except ValueError:
        raise InvalidInput(
            "The verifier's state file is not readable JSON.",
            hint="Restore it from a backup; deleting it forgets every checkpoint seen so far.",
        ) from None
    state.setdefault("logs", {})
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    write_secret(path, json.dumps(state, indent=1, sort_keys=True).encode())


# --- the check --------------------------------------------------------------------------------


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(message)


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
) -> dict[str, Any]:
    """Check the whole log; a report, or :class:`TamperDetected` listing every problem."""
    found = Findings()
    state = load_state(state_path) if state_path else {"logs": {}}
    served_key = source.verifier_key()
    verifier = cp.Verifier.parse(pinned_key or served_key)
    if pinned_key and served_key != pinned_key:
        found.fail("The log now serves a different signing key from the one pinned.")

    try:
        head = cp.verify(source.checkpoint(), verifier)
    except cp.CheckpointError as exc:
        found.fail(f"The latest checkpoint cannot be trusted: {exc.message}")
        return {
            "ok": False,
            "verifier_key": verifier.vkey,
            "problems": found.problems,
            "notes": found.notes,
        }
    log_state = state["logs"].get(head.origin)
    if log_state is None:
        found.notes.append("First check of this log: its key is now pinned in the state file.")
        log_state = {"verifier_key": verifier.vkey, "checkpoints": []}
    elif log_state["verifier_key"] != verifier.vkey:
        found.fail("The log's signing key changed since the last check.")
    seen = [
        (c["size"], bytes.fromhex(c["root"]))
        for c in log_state["checkpoints"]
        if c["size"] <= head.size
    ]
    for c in log_state["checkpoints"]:
        if c["size"] > head.size:
            found.fail(
                f"History rewritten: a checkpoint seen before had {c['size']} entries, "
                f"but the log now signs only {head.size}."
            )
    stored = _stored_checkpoints(local, verifier, head.size, found) if local else []

    wanted = {s for s, _ in seen} | {s for s, _ in stored} | {head.size}
    if local is not None:
        total = local.store.count()
        roots, leaf_hashes = _recompute(_local_rows(local, found), total, wanted, found)
    else:
        roots, leaf_hashes = _recompute(_stream(source, head.size), head.size, wanted, found)

    if roots.get(head.size) != head.root:
        found.fail(
            f"The entries do not reproduce the signed root at size {head.size}: an entry was "
            "edited, deleted, reordered or inserted."
        )
    for size, root in seen:
        if size in roots and roots[size] != root:
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
    for size, root in stored:
        if size in roots and roots[size] != root:
            found.fail(f"The log's own checkpoint at size {size} no longer matches its entries.")
    if local is not None:
        _check_local_state(local, leaf_hashes, roots, found)
    if not found.problems:
        _sample_proofs(source, head, leaf_hashes, found, rng or random.Random())

    result = {
        "ok": not found.problems,
        "origin": head.origin,
        "size": head.size,
        "root": head.root.hex(),
        "verifier_key": verifier.vkey,
        "checkpoints_checked": sorted({s for s, _ in seen} | {s for s, _ in stored}),
        "problems": found.problems,
        "notes": found.notes,
    }
    if found.problems:
        return result
    known = {(c["size"], c["root"]) for c in log_state["checkpoints"]}
    if (head.size, head.root.hex()) not in known:
        log_state["checkpoints"].append(
            {"size": head.size, "root": head.root.hex(), "note": head.text}
        )
    state["logs"][head.origin] = log_state
    if state_path is not None:
        save_state(state_path, state)
    return result


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
    for level, idx, h in ledger.store.iter_nodes():
        seen += 1
        blob = levels[level] if 0 < level < len(levels) else b""
        if blob[idx * 32 : idx * 32 + 32] != h:
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
