"""The log's durable state in the operational store (SQLite or PostgreSQL).

Tables:

- ``entries``: ``leaf_index`` (dense, from 0), ``leaf_input`` (the exact bytes hashed),
  ``leaf_hash``. Rows are only ever inserted.
- ``nodes``: the hash of every *complete* perfect subtree above the leaves, keyed by
  ``(level, node_index)``; about one row per entry. Any proof needs at most ~2·log2(n) of
  them, read in one indexed query, so proofs stay in the milliseconds at millions of entries.
- ``tree_state``: one row with the size, the root and the *frontier* (the perfect subtrees
  covering the whole log, concatenated), so an append needs no reads but this row.
- ``checkpoints``: every signed checkpoint the log has issued.
- ``cosignatures``: witnesses' cosignature lines, by the checkpoint (size and root) they cosign.

Appends are serialised by locking the ``tree_state`` row (``SELECT ... FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite): index assignment, the new entries, their nodes,
the new tree state and the checkpoint signed over it commit together or not at all, so
concurrent writers and crashes can never leave a gap, a fork, a lost entry or an entry that no
signed checkpoint covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    union_all,
    update,
)

from confide.common import opstore
from confide.common.clock import utcnow
from confide.common.columns import UTC_DATETIME
from confide.ledger import merkle

metadata = MetaData()

entries = Table(
    "entries",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_input", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Index("ix_entries_leaf_hash", "leaf_hash"),
)

nodes = Table(
    "nodes",
    metadata,
    # node_id = level * 2**40 + index: one integer key, so a proof is one IN (...) lookup.
    Column("node_id", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
NODE_LEVEL = 1 << 40

# Events from other parties already turned into entries (key → the entry's index), so an
# event delivered twice is logged once.
received_events = Table(
    "received_events",
    metadata,
    Column("event_key", String(200), primary_key=True),
    Column("leaf_index", BigInteger, nullable=False),
)


def node_id(level: int, index: int) -> int:
    """The key of the perfect subtree ``(level, index)`` in the ``nodes`` table."""
    return level * NODE_LEVEL + index


_FETCH = union_all(
    select(entries.c.leaf_index.label("key"), entries.c.leaf_hash.label("hash")).where(
        entries.c.leaf_index.in_(bindparam("leaves", expanding=True))
    ),
    select(nodes.c.node_id.label("key"), nodes.c.hash).where(
        nodes.c.node_id.in_(bindparam("nodes", expanding=True))
    ),
)

tree_state = Table(
    "tree_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("frontier", LargeBinary, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False, index=True),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
)

cosignatures = Table(
    "cosignatures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False, index=True),
    Column("root", LargeBinary(32), nullable=False),
    Column("witness", Text, nullable=False),  # the witness's key name
    Column("key_id", LargeBinary(4), nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # when the witness cosigned
    Column("line", Text, nullable=False),  # the signature line, as the witness sent it
    Column("created_at", UTC_DATETIME, nullable=False),
    # the largest size each witness cosigned is one index lookup, however long the log
    Index("ix_cosignatures_witness", "witness", "key_id", "size"),
)

_CHUNK = 5000  # rows per INSERT: keeps statements within driver parameter limits


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: datetime


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


class LogStore:
    """Entries, subtree hashes, tree state and checkpoints of one log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def open(cls, folder: Path) -> LogStore:
        return cls(opstore.open_store("ledger", folder))

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ----------------------------------------------------------------------------

    def append(
        self,
        make_leaves: Callable[[], Sequence[bytes]],
        sign: Callable[[int, bytes], str] | None = None,
    ) -> range:
        """Append the leaves ``make_leaves()`` returns, atomically; their indices.

        ``make_leaves`` runs while the log is locked, so whatever it stamps into the entries
        (the time, say) follows the order of the indices. ``sign(size, root)`` signs the new
        tree head; its checkpoint commits with the entries, so none is ever uncovered.
        """
        indices = self.append_keyed(lambda: [(None, leaf) for leaf in make_leaves()], sign)
        return range(indices[0], indices[-1] + 1) if indices else range(self.head().size, 0)

    def append_keyed(
        self,
        make_items: Callable[[], Sequence[tuple[str | None, bytes]]],
        sign: Callable[[int, bytes], str] | None = None,
    ) -> list[int]:
        """Like :meth:`append`, for ``(key, leaf)`` pairs: a leaf whose key was appended before
        is not appended again (its earlier index is returned), so redelivered events add
        nothing. The check and the append are one transaction under the log's lock."""
        with self.engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            state = conn.execute(
                select(tree_state.c.size, tree_state.c.frontier)
                .where(tree_state.c.id == 1)
                .with_for_update()
            ).one()
            items = list(make_items())
            keys = [k for k, _ in items if k is not None]
            seen: dict[str, int] = {}
            for i in range(0, len(keys), _CHUNK):
                part = keys[i : i + _CHUNK]
                seen.update(
                    (k, int(ix))
                    for k, ix in conn.execute(
                        select(received_events.c.event_key, received_events.c.leaf_index).where(
                            received_events.c.event_key.in_(part)
                        )
                    )
                )
            out: list[int] = []
            leaves: list[bytes] = []
            key_rows: list[dict[str, object]] = []
            for key, leaf in items:
                if key is not None and key in seen:
                    out.append(seen[key])
                    continue
                index = state.size + len(leaves)
                out.append(index)
                leaves.append(leaf)
                if key is not None:
                    seen[key] = index
                    key_rows.append({"event_key": key, "leaf_index": index})
            size = state.size
            frontier = _split(state.frontier)
            entry_rows, node_rows = [], []
            for data in leaves:
                leaf = merkle.leaf_hash(data)
                entry_rows.append({"leaf_index": size, "leaf_input": data, "leaf_hash": leaf})
                for subtree in merkle.append_leaf(frontier, size, leaf)[1:]:
                    node_rows.append(
                        {"node_id": node_id(subtree.level, subtree.position), "hash": subtree.hash}
                    )
                size += 1
            for i in range(0, len(entry_rows), _CHUNK):
                conn.execute(insert(entries), entry_rows[i : i + _CHUNK])
            for i in range(0, len(node_rows), _CHUNK):
                conn.execute(insert(nodes), node_rows[i : i + _CHUNK])
            root = merkle.fold_right(frontier)
            conn.execute(
                update(tree_state)
                .where(tree_state.c.id == 1)
                .values(size=size, root=root, frontier=b"".join(frontier))
            )
            for i in range(0, len(key_rows), _CHUNK):
                conn.execute(insert(received_events), key_rows[i : i + _CHUNK])
            if sign is not None and leaves:
                self._insert_checkpoint(conn, size, root, sign(size, root))
            conn.commit()
        return out

    def save_checkpoint(self, size: int, root: bytes, note: str) -> None:
        with self.engine.begin() as conn:
            self._insert_checkpoint(conn, size, root, note)

    @staticmethod
    def _insert_checkpoint(conn: Connection, size: int, root: bytes, note: str) -> None:
        conn.execute(
            insert(checkpoints).values(size=size, root=root, note=note, created_at=utcnow())
        )

    def save_cosignature(
        self, size: int, root: bytes, witness: str, key_id: bytes, timestamp: int, line: str
    ) -> None:
        """Keep a witness's (already verified) cosignature of the checkpoint ``(size, root)``;
        only its newest cosignature of one checkpoint is kept."""
        same = (
            (cosignatures.c.size == size)
            & (cosignatures.c.root == root)
            & (cosignatures.c.witness == witness)
            & (cosignatures.c.key_id == key_id)
        )
        with self.engine.begin() as conn:
            conn.execute(delete(cosignatures).where(same))
            conn.execute(
                insert(cosignatures).values(
                    size=size,
                    root=root,
                    witness=witness,
                    key_id=key_id,
                    timestamp=timestamp,
                    line=line,
                    created_at=utcnow(),
                )
            )

    # --- reading ----------------------------------------------------------------------------

    def head(self, conn: Connection | None = None) -> TreeHead:
        with self._reading(conn) as c:
            row = c.execute(select(tree_state.c.size, tree_state.c.root)).one()
        return TreeHead(row.size, row.root)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(checkpoints).order_by(checkpoints.c.size.desc(), checkpoints.c.id.desc())
            ).first()
        return (
            None if row is None else StoredCheckpoint(row.size, row.root, row.note, row.created_at)
        )

    def cosignature_lines(self, size: int, root: bytes) -> list[str]:
        """The cosignature lines kept for the checkpoint ``(size, root)``, by witness name."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(cosignatures.c.line)
                .where(cosignatures.c.size == size, cosignatures.c.root == root)
                .order_by(cosignatures.c.witness, cosignatures.c.key_id)
            ).all()
        return [row.line for row in rows]

    def cosigned_size(self, witness: str, key_id: bytes) -> int:
        """The largest tree size this witness has cosigned (0 when none)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.max(cosignatures.c.size)).where(
                    cosignatures.c.witness == witness, cosignatures.c.key_id == key_id
                )
            ).scalar_one()
        return int(found or 0)

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(checkpoints).order_by(checkpoints.c.id)).all()
        return [StoredCheckpoint(row.size, row.root, row.note, row.created_at) for row in rows]

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(index, leaf_input)`` for stored indices in ``[start, end)``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(entries.c.leaf_index, entries.c.leaf_input)
                .where(entries.c.leaf_index >= start, entries.c.leaf_index < end)
                .order_by(entries.c.leaf_index)
            ).all()
        return [(row.leaf_index, bytes(row.leaf_input)) for row in rows]

    def iter_rows(self, page: int = 10_000) -> Iterator[tuple[int, bytes, bytes]]:
        """Every stored entry as ``(index, leaf_input, leaf_hash)``, in index order."""
        columns = (entries.c.leaf_index, entries.c.leaf_input, entries.c.leaf_hash)
        for row in self._paged(entries.c.leaf_index, columns, page):
            yield row.leaf_index, bytes(row.leaf_input), bytes(row.leaf_hash)

    def iter_nodes(self, page: int = 20_000) -> Iterator[merkle.Subtree]:
        """Every stored subtree hash."""
        for row in self._paged(nodes.c.node_id, (nodes.c.node_id, nodes.c.hash), page):
            level, node_index = divmod(row.node_id, NODE_LEVEL)
            yield merkle.Subtree(level, node_index, bytes(row.hash))

    def _paged(self, key: Any, columns: Sequence[Any], page: int) -> Iterator[Any]:
        """Every row of ``key``'s table in ``key`` order, ``page`` rows per read (no read stays
        open while the caller works through a page)."""
        after = -1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(*columns).where(key > after).order_by(key).limit(page)
                ).all()
            if not rows:
                return
            yield from rows
            after = getattr(rows[-1], key.name)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(entries)).scalar_one()

    def leaf_index(self, leaf_hash: bytes, size: int, conn: Connection | None = None) -> int | None:
        """The first index below ``size`` whose leaf hash is ``leaf_hash``."""
        with self._reading(conn) as c:  # by the hash index alone: a hash matches ~1 row
            found = c.execute(
                select(entries.c.leaf_index).where(entries.c.leaf_hash == leaf_hash)
            ).scalars()
            return min((i for i in found if i < size), default=None)

    def fetch(
        self, wanted: set[merkle.Perfect], conn: Connection | None = None
    ) -> dict[merkle.Perfect, bytes]:
        """Hashes of the perfect subtrees ``wanted`` (level 0 are leaves), in one query."""
        if not wanted:
            return {}
        leaves = [i for level, i in wanted if level == 0]
        upper = {node_id(level, i): (level, i) for level, i in wanted if level}
        with self._reading(conn) as c:
            rows = c.execute(_FETCH, {"leaves": leaves, "nodes": list(upper)}).all()
        out: dict[merkle.Perfect, bytes] = {}
        for key, h in rows:  # the two halves of the union are told apart by their keys
            out[upper.get(key, (0, key))] = bytes(h)
        missing = wanted - out.keys()
        if missing:
            raise LookupError(f"the log store is missing {len(missing)} subtree hash(es)")
        return out

    @contextmanager
    def _reading(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.connect() as fresh:
                yield fresh

    def reader(self) -> AbstractContextManager[Connection]:
        """One connection for several reads (a proof: the head, then the hashes)."""
        return self.engine.connect()
