"""A verified copy of the whole log at a signed checkpoint, and the inclusion proofs cut from it.

The usage-report party reads *every* entry up to the latest signed checkpoint, checks the
checkpoint's signature and that the entries hash to its root, then computes each proof it hands
out from that copy. So the log's server sees the same requests whoever asked (one checkpoint,
every page of entries) and never a proof request that would point at one person's entries.
Every proof is checked with the RFC 9162 verifier before it is reported, and carries the signed
checkpoint text so the person (or anyone they show it to) can check it again with any RFC 6962
client.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.ledger.register import read_log
from confide.ledger.verify import TamperDetected


class LedgerReader(Protocol):
    """What the usage party needs of the ledger (``Ledger`` in-process, or an API client)."""

    @property
    def verifier(self) -> cp.Verifier: ...

    def checkpoint(self) -> cp.Checkpoint: ...

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 inclusion proof of one entry in the tree a signed checkpoint commits to."""

    index: int
    size: int
    leaf_input: bytes
    audit_path: tuple[bytes, ...]
    checkpoint: str  # the signed note text

    @property
    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.leaf_input)

    def verify(self, verifier: cp.Verifier) -> None:
        """Raise :class:`TamperDetected` unless the checkpoint is signed by ``verifier``, is the
        tree of ``size`` entries, and the audit path leads from the entry to its root."""
        try:
            head = cp.verify(self.checkpoint, verifier)
        except cp.CheckpointError as exc:
            raise TamperDetected(exc.message) from None
        if head.size != self.size:
            raise TamperDetected(
                f"A proof claims a tree of {self.size} entries but its checkpoint is of "
                f"{head.size}."
            )
        try:
            merkle.verify_inclusion(
                self.index, self.size, self.leaf_hash, self.audit_path, head.root
            )
        except merkle.ProofError as exc:
            raise TamperDetected(f"Log entry {self.index}: {exc}.") from None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "leaf_input": base64.b64encode(self.leaf_input).decode(),
            "leaf_hash": self.leaf_hash.hex(),
            "audit_path": [h.hex() for h in self.audit_path],
            "checkpoint": self.checkpoint,
        }


class LogSnapshot:
    """Every entry of the log at one signed checkpoint, checked against it."""

    def __init__(
        self, head: cp.Checkpoint, entries: list[tuple[int, bytes]], verifier: cp.Verifier
    ) -> None:
        self.head = head
        self.entries = entries
        self.verifier = verifier
        self._levels = _levels([merkle.leaf_hash(data) for _, data in entries])
        if self._root() != head.root:
            raise TamperDetected(
                f"The log's first {head.size} entries do not hash to the root its signed "
                "checkpoint states: the log was altered.",
                hint="Run 'confide ledger verify' and report the result to the ledger operator.",
            )

    @classmethod
    def take(cls, ledger: LedgerReader, verifier: cp.Verifier | None = None) -> LogSnapshot:
        """Read the latest checkpoint and every entry it covers; verify both."""
        verifier = verifier or ledger.verifier
        signed = ledger.checkpoint()
        try:
            head = cp.verify(signed.text, verifier)
        except cp.CheckpointError as exc:
            raise TamperDetected(exc.message, hint=exc.hint) from None
        entries = list(read_log(ledger, head.size))
        if [i for i, _ in entries] != list(range(head.size)):
            raise TamperDetected(
                f"The log did not serve exactly entries 0 to {head.size - 1} for its checkpoint."
            )
        return cls(head, entries, verifier)

    def _fetch(self, wanted: set[merkle.Perfect]) -> dict[merkle.Perfect, bytes]:
        return {(lv, i): self._levels[lv][i] for lv, i in wanted}

    def _root(self) -> bytes:
        if self.head.size == 0:
            return merkle.EMPTY_ROOT
        return merkle.resolve([(0, self.head.size)], self._fetch)[0]

    def proof(self, index: int) -> InclusionProof:
        """The inclusion proof of entry ``index``, verified before it is returned."""
        path = merkle.resolve(merkle.inclusion_ranges(index, self.head.size), self._fetch)
        proof = InclusionProof(
            index, self.head.size, self.entries[index][1], tuple(path), self.head.text
        )
        proof.verify(self.verifier)
        return proof


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Hashes of every complete perfect subtree, level by level (level 0: the leaves)."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        )
    return levels
