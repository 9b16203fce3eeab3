"""The outbox: a sending party's table of events, written in the same transaction as the change.

Every party that tells others about its changes has an ``outbox`` table in its own store (an
Alembic migration of that party creates it from :func:`create_outbox`). The change and its
events commit together or not at all; the relay (:mod:`confide.events.relay`) then reads what
is due, delivers it and marks it delivered, or records the failure and when to try again.
A failure is recorded by the exception's type only: a message could name a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, MetaData, Table, insert, select, update

from confide.common.clock import as_utc, utcnow
from confide.common.columns import SERIAL_ID, UTC_DATETIME
from confide.events.types import Event, event_from_row

TABLE = "outbox"


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "seq",
            SERIAL_ID,
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(160), nullable=False, unique=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=False),
        sa.Column("delivered_at", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
    ]


def outbox_table(metadata: MetaData) -> Table:
    """The outbox's table in a party's metadata (for its queries)."""
    return Table(TABLE, metadata, *_columns())


def create_outbox(op: Any) -> None:
    """Create the outbox in a party's migration (``op`` is Alembic's)."""
    op.create_table(TABLE, *_columns())
    op.create_index("ix_outbox_due", TABLE, ["delivered_at", "next_attempt_at"])


def write(conn: Connection, table: Table, events: Iterable[Event]) -> int:
    """Put events in the outbox inside the caller's transaction; how many were written."""
    now = utcnow()
    rows = [
        {
            "event_id": e.event_id,
            "kind": e.kind,
            "body": e.body(),
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for e in events
    ]
    if rows:
        conn.execute(insert(table), rows)
    return len(rows)


def write_once(conn: Connection, table: Table, event: Event) -> bool:
    """Put an event in the outbox unless one with its id is there already (for changes that
    may be seen again after a crash); whether it was written."""
    found = conn.execute(select(table.c.seq).where(table.c.event_id == event.event_id)).first()
    return False if found else write(conn, table, [event]) == 1


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between delivery attempts: ``base`` doubled per attempt, at most
    ``cap``."""

    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=5)

    def after(self, attempts: int) -> timedelta:
        return min(self.cap, self.base * (2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Pending:
    """An event waiting in an outbox, with its delivery history."""

    seq: int
    event: Event
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


# How many events one relay round reads from an outbox. Large, because a run of erasure
# requests is handed over as one erasure pass, and each pass rewrites the record store: a
# mass opt-out of 10,000 people is one pass, not twenty.
BATCH = 20_000


class Outbox:
    """One party's outbox, as the relay and operators see it."""

    def __init__(self, party: str, engine: Engine, table: Table) -> None:
        self.party = party
        self.engine = engine
        self.table = table

    def due(self, now: datetime, limit: int = BATCH) -> list[Pending]:
        """The undelivered events that are due, oldest first, up to the first that is not:
        an event waiting for its retry holds back every later one, so order is kept."""
        out = []
        for item in self.pending(limit):
            if item.next_attempt_at > now:
                break
            out.append(item)
        return out

    def pending(self, limit: int = BATCH) -> list[Pending]:
        """Every undelivered event (due or waiting for a retry), oldest first."""
        table = self.table
        undelivered = table.c.delivered_at.is_(None)
        query = select(table).where(undelivered).order_by(table.c.seq).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Pending(
                row.seq,
                event_from_row(row.kind, row.event_id, row.body),
                row.attempts,
                as_utc(row.next_attempt_at),
                row.last_error,
            )
            for row in rows
        ]

    def delivered(self, seqs: Sequence[int], now: datetime | None = None) -> None:
        if not seqs:
            return
        table = self.table
        with self.engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.seq.in_(list(seqs)), table.c.delivered_at.is_(None))
                .values(delivered_at=now or utcnow())
            )

    def failed(
        self,
        items: Sequence[Pending],
        error: BaseException,
        backoff: Backoff,
        now: datetime | None = None,
    ) -> None:
        """Record a failed attempt: the error's type, and when to try again."""
        when = now or utcnow()
        table = self.table
        with self.engine.begin() as conn:
            for item in items:
                attempts = item.attempts + 1
                conn.execute(
                    update(table)
                    .where(table.c.seq == item.seq)
                    .values(
                        attempts=attempts,
                        next_attempt_at=when + backoff.after(attempts),
                        last_error=type(error).__name__[:200],
                    )
                )

    def counts(self) -> dict[str, int]:
        """Events delivered and pending (for operators and tests)."""
        table = self.table
        with self.engine.connect() as conn:
            delivered = conn.execute(
                select(sa.func.count()).select_from(table).where(table.c.delivered_at.is_not(None))
            ).scalar_one()
            pending = conn.execute(
                select(sa.func.count()).select_from(table).where(table.c.delivered_at.is_(None))
            ).scalar_one()
        return {"delivered": int(delivered), "pending": int(pending)}
