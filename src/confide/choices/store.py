"""The choices registry's tables (SQLAlchemy Core) and the one incremental fold over history.

``choice_events`` is the full history, append-only. ``choice_state`` is an index over it: per
person, choice and channel, the event that currently wins in that channel (latest
``effective_at``, ties to the later ``seq``); the channels' facts stay apart, and the choice in
force is read from them by the channel rule table (:mod:`confide.choices.channels`). It is
updated in the same transaction as the history with a conditional upsert, so it can never lag
behind; :func:`derive` is the reference fold it must always equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from confide.choices import channels
from confide.choices.model import Choices, utc
from confide.common.columns import SERIAL_ID, UTC_DATETIME
from confide.events.outbox import outbox_table

metadata = MetaData()

people = Table(
    "people",
    metadata,
    Column("id", SERIAL_ID, primary_key=True, autoincrement=True),
    Column("nhs_number", String(10), nullable=False, unique=True),
    Column("created_at", UTC_DATETIME, nullable=False),
)

choice_events = Table(
    "choice_events",
    metadata,
    Column("seq", SERIAL_ID, primary_key=True, autoincrement=True),
    Column("change_id", String(32), nullable=False, index=True),
    Column("person_id", SERIAL_ID, ForeignKey("people.id"), nullable=False),
    Column("choice", String(16), nullable=False),
    Column("value", Boolean, nullable=False),
    Column("effective_at", UTC_DATETIME, nullable=False),
    Column("recorded_at", UTC_DATETIME, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("actor", String(16), nullable=False),
    Column("proxy", JSON(none_as_null=True), nullable=True),
    Index("ix_choice_events_person_choice", "person_id", "choice", "effective_at", "seq"),
)

choice_state = Table(
    "choice_state",
    metadata,
    Column("person_id", SERIAL_ID, ForeignKey("people.id"), primary_key=True),
    Column("choice", String(16), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("value", Boolean, nullable=False),
    Column("effective_at", UTC_DATETIME, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_choice_state_choice_value", "choice", "value"),
)

demographics = Table(
    "demographics",
    metadata,
    Column("person_id", SERIAL_ID, ForeignKey("people.id"), primary_key=True),
    Column("birth_date", Date, nullable=True),
    Column("postcode", String(8), nullable=True),
    Column("practice", String(8), nullable=True),
    Column("district", String(4), nullable=True),
    Column("contact", String(200), nullable=True),
)

proxy_authorities = Table(
    "proxy_authorities",
    metadata,
    Column("id", SERIAL_ID, primary_key=True, autoincrement=True),
    Column("person_id", SERIAL_ID, ForeignKey("people.id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("reference", String(32), nullable=False),
    Column("recorded_at", UTC_DATETIME, nullable=False),
    Column("revoked_at", UTC_DATETIME, nullable=True),
)

identity_challenges = Table(
    "identity_challenges",
    metadata,
    Column("challenge_id", String(64), primary_key=True),
    Column("person_id", SERIAL_ID, ForeignKey("people.id"), nullable=True),
    Column("subject", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("used_at", UTC_DATETIME, nullable=True),
)

identity_attempts = Table(
    "identity_attempts",
    metadata,
    Column("id", SERIAL_ID, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", UTC_DATETIME, nullable=False),
    Index("ix_identity_attempts_key", "key", "kind", "at"),
)

identity_sessions = Table(
    "identity_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("person_id", SERIAL_ID, ForeignKey("people.id"), nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=False),
)

# One row, bumped in the same transaction as every change to the choices: readers (the TRE's
# exclusions) can tell at the cost of one primary-key read whether anything changed since they
# last looked. The row lock also orders concurrent writers' commits on PostgreSQL.
registry_version = Table(
    "registry_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

_CHUNK = 5_000


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(conn: Connection, table: Table):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def person_ids(conn: Connection, numbers: Iterable[str], *, create: bool) -> dict[str, int]:
    """Map NHS numbers to person ids, creating missing people when ``create`` (race-safe)."""
    wanted = sorted(set(numbers))
    found: dict[str, int] = {}
    for part in chunks(wanted):
        rows = conn.execute(
            select(people.c.nhs_number, people.c.id).where(people.c.nhs_number.in_(part))
        )
        found.update({n: i for n, i in rows})
    missing = [n for n in wanted if n not in found]
    if create and missing:
        now = utc(None)
        stmt = _insert(conn, people).on_conflict_do_nothing(index_elements=["nhs_number"])
        conn.execute(stmt, [{"nhs_number": n, "created_at": now} for n in missing])
        for part in chunks(missing):
            rows = conn.execute(
                select(people.c.nhs_number, people.c.id).where(people.c.nhs_number.in_(part))
            )
            found.update({n: i for n, i in rows})
    return found


def bump_version(conn: Connection) -> None:
    """Mark that the choices changed (call inside the writing transaction)."""
    rv = registry_version
    done = conn.execute(update(rv).where(rv.c.id == 1).values(version=rv.c.version + 1))
    if done.rowcount == 0:
        conn.execute(insert(rv).values(id=1, version=1))


def read_version(conn: Connection) -> int:
    """The registry's change counter (0 before the first change)."""
    rv = registry_version
    return int(conn.execute(select(rv.c.version).where(rv.c.id == 1)).scalar() or 0)


def fold_into_state(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Apply new event rows (with ``seq``) to ``choice_state``: within each channel the later
    event wins, in SQL; other channels' facts are untouched.

    Rows are first reduced to one winner per (person, choice, channel), because one upsert
    statement may not touch a row twice; the upsert's WHERE keeps the state right under
    concurrent writers.
    """
    winners: dict[tuple[int, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["person_id"], row["choice"], row["channel"])
        best = winners.get(key)
        if best is None or (row["effective_at"], row["seq"]) > (
            best["effective_at"],
            best["seq"],
        ):
            winners[key] = row
    if not winners:
        return
    stmt = _insert(conn, choice_state)
    newer = or_(
        stmt.excluded.effective_at > choice_state.c.effective_at,
        and_(
            stmt.excluded.effective_at == choice_state.c.effective_at,
            stmt.excluded.seq > choice_state.c.seq,
        ),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["person_id", "choice", "channel"],
        set_={
            "value": stmt.excluded.value,
            "effective_at": stmt.excluded.effective_at,
            "seq": stmt.excluded.seq,
        },
        where=newer,
    )
    conn.execute(
        stmt,
        [
            {
                "person_id": row["person_id"],
                "choice": row["choice"],
                "channel": row["channel"],
                "value": row["value"],
                "effective_at": row["effective_at"],
                "seq": row["seq"],
            }
            for row in winners.values()
        ],
    )


def derive(events: Iterable[channels.Fact]) -> Choices:
    """The reference fold: channel facts → the choices in force (latest fact per channel,
    combined by the channel rule table)."""
    return channels.effective(events)


# Events for other parties (choice changes, type 1 codes seen, erasure requests), written in
# the transaction of the change they describe.
outbox = outbox_table(metadata)
