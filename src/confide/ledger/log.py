"""The ledger: the one interface other parties call to put public facts in the log.

``Ledger.open(home)`` opens (and on first use creates) the log in the ledger's folder. Parties
call :meth:`Ledger.append` or :meth:`Ledger.append_many` with a kind and a body from
:mod:`confide.ledger.entries`; the ledger validates, refuses anything identifying, stamps the
time and appends atomically, signing a checkpoint of the new tree head in the same transaction,
so no entry is ever served that a signed checkpoint does not cover. Then, where the deployment
has witnesses (:mod:`confide.ledger.witnessing`), it asks them to cosign that checkpoint.
:meth:`Ledger.checkpoint` is the latest checkpoint with the cosignatures gathered for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confide.common.errors import InvalidInput, NotFound
from confide.common.home import Home
from confide.ledger import checkpoint as cp
from confide.ledger import cosignature as cosig
from confide.ledger import entries as schema
from confide.ledger import merkle
from confide.ledger.store import LogStore, TreeHead

if TYPE_CHECKING:
    from confide.ledger.witnessing import Witnessing


class Ledger:
    """An append-only, RFC 6962 Merkle-tree log with signed checkpoints."""

    def __init__(self, store: LogStore, signer: cp.Signer, folder: Path | None = None) -> None:
        self.store = store
        self.signer = signer
        self.folder = folder
        # The witnesses asked to cosign each new checkpoint (set by the deployment's wiring).
        self.witnessing: Witnessing | None = None

    @classmethod
    def open(cls, home: Home) -> Ledger:
        folder = home.party("ledger")
        return cls(LogStore.open(folder), cp.load_signer(folder), folder)

    def close(self) -> None:
        if self.witnessing is not None:
            self.witnessing.close()
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ----------------------------------------------------------------------------

    def append(self, kind: str, body: dict[str, Any]) -> int:
        """Append one entry; its index in the log."""
        return self.append_many([(kind, body)])[0]

    def append_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> list[int]:
        """Append many entries in one transaction: all are validated first, then all or none."""
        batch = list(items)
        _validate_all(batch)

        def leaves() -> list[bytes]:
            at = schema.timestamp()
            return [schema.envelope(kind, body, at) for kind, body in batch]

        return self._append(leaves) if batch else []

    def append_once(self, items: Iterable[tuple[str, str, dict[str, Any]]]) -> list[int]:
        """Append ``(key, kind, body)`` entries in one transaction, each at most once by its
        key (another party's event id): an event delivered again adds nothing. Their indices
        (the earlier index for a key already logged)."""
        batch = list(items)
        _validate_all([(kind, body) for _key, kind, body in batch])
        if not batch:
            return []

        def keyed() -> list[tuple[str | None, bytes]]:
            at = schema.timestamp()
            return [(key, schema.envelope(kind, body, at)) for key, kind, body in batch]

        before = self.store.head().size
        indices = self.store.append_keyed(keyed, sign=self._sign)
        if self.witnessing is not None and any(i >= before for i in indices):
            self.witnessing.cosign_latest()
        return indices

    def append_raw(self, leaf_inputs: Sequence[bytes]) -> list[int]:
        """Append leaf inputs as they are, bypassing the schema (benchmarks and tests only)."""
        return self._append(lambda: leaf_inputs)

    def _append(self, leaves: Callable[[], Sequence[bytes]]) -> list[int]:
        indices = list(self.store.append(leaves, sign=self._sign))
        if indices and self.witnessing is not None:
            self.witnessing.cosign_latest()
        return indices

    def _sign(self, size: int, root: bytes) -> str:
        return cp.sign(self.signer, size, root).text

    def checkpoint(self) -> cp.Checkpoint:
        """The latest signed checkpoint, with every witness's cosignature gathered for it.

        Every append signs one, so this covers the whole log. A log that has none yet (an empty
        one) gets its first here.
        """
        note = self.checkpoint_note()
        return self.sign_head() if note is None else cp.parse(note)[0]

    def witness_keys(self) -> list[str]:
        """The verifier keys of the witnesses this log asks to cosign (what auditors pin)."""
        from confide.ledger.witnessing import load_witnesses

        return [spec.verifier.vkey for spec in load_witnesses(self.folder)]

    def checkpoint_note(self) -> str | None:
        """The latest checkpoint's note as stored, with the cosignature lines gathered for it
        (None before the first checkpoint). Unparsed, so an auditor sees any damage itself."""
        latest = self.store.latest_checkpoint()
        if latest is None:
            return None
        lines = self.store.cosignature_lines(latest.size, latest.root)
        return cosig.with_cosignatures(latest.note, lines)

    def verifier_key(self) -> str:
        """The signed-note verifier key of the log's checkpoints (what auditors pin)."""
        return self.verifier.vkey

    def sign_head(self) -> cp.Checkpoint:
        """Sign the current tree head unless the latest checkpoint already covers it (a log
        written before every append was signed); the latest checkpoint either way."""
        head = self.store.head()
        latest = self.store.latest_checkpoint()
        if latest is None or (latest.size, latest.root) != (head.size, head.root):
            self.store.save_checkpoint(head.size, head.root, self._sign(head.size, head.root))
        return self.checkpoint()

    # --- reading ----------------------------------------------------------------------------

    @property
    def verifier(self) -> cp.Verifier:
        return self.signer.verifier

    def head(self) -> TreeHead:
        return self.store.head()

    def latest_checkpoint(self) -> cp.Checkpoint | None:
        """The latest checkpoint with its cosignatures, or None before the first is signed."""
        return None if self.store.latest_checkpoint() is None else self.checkpoint()

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(index, leaf_input)`` for ``start <= index < end`` (clipped to the log's size)."""
        size = self.head().size
        self._check_range(start, end, size)
        return self.store.entries(start, min(end, size))

    def decoded(self, start: int, end: int) -> list[schema.Entry]:
        return [schema.decode(i, data) for i, data in self.entries(start, end)]

    def root_at(self, size: int) -> bytes:
        """The tree head the log had when it held ``size`` entries."""
        with self.store.reader() as conn:
            self._check_size(size, self.store.head(conn).size)
            if size == 0:
                return merkle.EMPTY_ROOT
            return merkle.resolve([(0, size)], lambda w: self.store.fetch(w, conn))[0]

    def inclusion_proof(
        self, leaf: int | bytes, size: int | None = None
    ) -> tuple[int, list[bytes]]:
        """``(index, audit path)`` for an entry (by index or leaf hash) in the tree of ``size``."""
        with self.store.reader() as conn:
            current = self.store.head(conn).size
            size = current if size is None else size
            self._check_size(size, current)
            if isinstance(leaf, bytes | bytearray):
                index = self.store.leaf_index(bytes(leaf), size, conn)
                if index is None:
                    raise NotFound(
                        f"No entry with that leaf hash is among the first {size} entries."
                    )
            else:
                index = leaf
            if not 0 <= index < size:
                raise InvalidInput(f"Entry {index} is not in a tree of {size} entries.")
            ranges = merkle.inclusion_ranges(index, size)
            return index, merkle.resolve(ranges, lambda w: self.store.fetch(w, conn))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """Proof that the tree of ``first`` entries is a prefix of the tree of ``second``."""
        with self.store.reader() as conn:
            self._check_size(second, self.store.head(conn).size)
            if not 0 <= first <= second:
                raise InvalidInput(
                    f"A consistency proof goes from a smaller tree to a larger one ({first} > "
                    f"{second})."
                )
            ranges = merkle.consistency_ranges(first, second)
            return merkle.resolve(ranges, lambda w: self.store.fetch(w, conn))

    @staticmethod
    def _check_size(size: int, current: int) -> None:
        if not 0 <= size <= current:
            raise InvalidInput(
                f"The log has {current} entries, so there is no tree of {size} entries.",
                hint="Ask for a size between 0 and the size of the latest checkpoint.",
            )

    @staticmethod
    def _check_range(start: int, end: int, size: int) -> None:
        if start < 0 or end < start:
            raise InvalidInput("Entries are asked for as start <= end, both 0 or more.")
        if start > size:
            raise InvalidInput(f"The log has {size} entries; start must be at most that.")


def _validate_all(batch: list[tuple[str, dict[str, Any]]]) -> None:
    """Check every ``(kind, body)`` against its schema before any is written, saying which
    entry of a batch was wrong."""
    for i, (kind, body) in enumerate(batch):
        try:
            schema.validate(kind, body)
        except schema.EntryRejected as exc:
            if len(batch) > 1:
                exc.prefixed(f"Entry {i + 1} of {len(batch)}: ")
            raise
