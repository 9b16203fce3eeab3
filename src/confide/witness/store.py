"""The witness's state: which logs it watches, the latest checkpoint it cosigned of each, and
evidence of misbehaviour.

Always a SQLite file in the witness's own folder, whatever database the log uses: a witness
that shared the log's database could be rewritten by whoever can rewrite the log, which is the
very attack it is there to catch. The check of the old size and the move to the new checkpoint
happen in one locked transaction (``BEGIN IMMEDIATE``), so two requests racing can never roll
the witness back (C2SP tlog-witness: the check and the update must be atomic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from confide.common import opstore
from confide.common.clock import utcnow
from confide.common.columns import UTC_DATETIME

metadata = MetaData()

logs = Table(
    "logs",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("verifier_key", Text, primary_key=True),
    Column("added_at", UTC_DATETIME, nullable=False),
)

latest = Table(
    "latest",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
)

evidence = Table(
    "evidence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("received_at", UTC_DATETIME, nullable=False),
)

DB_FILE = "witness.db"
MAX_EVIDENCE = 1000  # per log: enough to prove misbehaviour, too few to fill the disk


@dataclass(frozen=True)
class Latest:
    """The latest checkpoint the witness cosigned for one log."""

    origin: str
    size: int
    root: bytes
    note: str
    updated_at: datetime


@dataclass(frozen=True)
class Evidence:
    origin: str
    reason: str
    request: str
    received_at: datetime


def _latest(row: Row[Any]) -> Latest:
    return Latest(row.origin, row.size, bytes(row.root), row.note, row.updated_at)


class WitnessStore:
    """Trusted log keys, latest cosigned checkpoints and evidence, in the witness's folder."""

    def __init__(self, folder: Path) -> None:
        self.engine = opstore.sqlite_engine(f"sqlite:///{folder / DB_FILE}")
        opstore.migrate(self.engine, "witness")

    def close(self) -> None:
        self.engine.dispose()

    # --- the logs it watches ----------------------------------------------------------------

    def trust(self, origin: str, verifier_key: str) -> None:
        with self.engine.begin() as conn:
            known = conn.execute(
                select(logs.c.origin).where(
                    logs.c.origin == origin, logs.c.verifier_key == verifier_key
                )
            ).first()
            if known is None:
                conn.execute(
                    insert(logs).values(origin=origin, verifier_key=verifier_key, added_at=utcnow())
                )

    def keys_for(self, origin: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(logs.c.verifier_key).where(logs.c.origin == origin)).scalars()
            )

    def origins(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(logs).order_by(logs.c.origin, logs.c.added_at)):
                out.setdefault(row.origin, []).append(row.verifier_key)
        return out

    # --- the latest checkpoint of each ------------------------------------------------------

    def latest(self, origin: str) -> Latest | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(latest).where(latest.c.origin == origin)).first()
        return None if row is None else _latest(row)

    def advance(
        self, origin: str, decide: Callable[[Latest | None], tuple[int, bytes, str]]
    ) -> None:
        """Move ``origin`` to the checkpoint ``decide(current)`` returns, with the log's entry
        locked from the read to the write; ``decide`` raises to leave it as it was."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            row = conn.execute(select(latest).where(latest.c.origin == origin)).first()
            current = None if row is None else _latest(row)
            size, root, note = decide(current)
            values = {"size": size, "root": root, "note": note, "updated_at": utcnow()}
            if current is None:
                conn.execute(insert(latest).values(origin=origin, **values))
            else:
                conn.execute(update(latest).where(latest.c.origin == origin).values(**values))
            conn.commit()

    # --- evidence ---------------------------------------------------------------------------

    def record(self, origin: str, reason: str, request: str) -> None:
        """Keep a refused, validly signed request that shows the log misbehaving."""
        with self.engine.begin() as conn:
            count = conn.execute(
                select(func.count()).select_from(evidence).where(evidence.c.origin == origin)
            ).scalar_one()
            if count < MAX_EVIDENCE:
                conn.execute(
                    insert(evidence).values(
                        origin=origin,
                        reason=reason,
                        request=request,
                        received_at=utcnow(),
                    )
                )

    def evidence(self, origin: str | None = None) -> list[Evidence]:
        query = select(evidence.c.origin, evidence.c.reason, evidence.c.request)
        query = query.add_columns(evidence.c.received_at).order_by(evidence.c.id)
        if origin is not None:
            query = query.where(evidence.c.origin == origin)
        with self.engine.connect() as conn:
            return [
                Evidence(row.origin, row.reason, row.request, row.received_at)
                for row in conn.execute(query)
            ]
