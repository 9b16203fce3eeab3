"""The hub's erasure register: durable tombstones, and which stores have confirmed each erasure.

An erasure is recorded here, in the hub's operational store, before any file is touched. From
that commit on, the person's pseudonym is a tombstone that ingest and re-admission consult under
the record store's write lock, so no submission (old, new, or arriving at the same moment)
brings them back, whatever the order. The hub sees pseudonyms only, never identifiers.

Each erasure lists the stores that held or may hold the person (:data:`HUB_STORES`, plus any a
caller adds, such as the TRE's caches and release membership files); it is complete only when
every one has confirmed. Until then it is pending: :meth:`ErasureRegister.pending` shows it to
operators, and the hub's own steps are redone by :meth:`confide.hub.ingest.Hub.complete_erasures`
(each step is idempotent).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Engine, MetaData, String, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from confide.common.clock import as_utc, utcnow
from confide.common.columns import UTC_DATETIME

RECORDS = "hub.records"
KEPT = "hub.kept_submissions"
TRE_CACHE = "tre.cache"
RELEASES = "tre.release_membership"
# The stores inside the hub itself, erased by the hub's own code.
HUB_STORES: tuple[str, ...] = (RECORDS, KEPT)

metadata = MetaData()

erased_people = Table(
    "erased_people",
    metadata,
    Column("pseudonym", String(64), primary_key=True),
    Column("erasure_id", String(32), nullable=False),
    Column("requested_at", UTC_DATETIME, nullable=False),
)

erasure_steps = Table(
    "erasure_steps",
    metadata,
    Column("erasure_id", String(32), primary_key=True),
    Column("store", String(40), primary_key=True),
    Column("requested_at", UTC_DATETIME, nullable=False),
    Column("confirmed_at", UTC_DATETIME, nullable=True),
)

_CHUNK = 5_000


def _insert(engine: Engine, table: Table) -> Any:
    return (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(table)


class ErasureRegister:
    """Tombstones and per-store confirmations, in the hub's operational store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def request(
        self, pseudonyms: Iterable[str], stores: Sequence[str], erasure_id: str | None = None
    ) -> str:
        """Record an erasure (tombstones and one pending step per store) and commit it.

        A person already tombstoned keeps their first tombstone; the new erasure still lists
        its own steps, so every request is seen through to the end."""
        eid = erasure_id or uuid.uuid4().hex
        now = utcnow()
        people = sorted(set(pseudonyms))
        with self.engine.begin() as conn:
            for start in range(0, len(people), _CHUNK):
                part = people[start : start + _CHUNK]
                stmt = _insert(self.engine, erased_people).on_conflict_do_nothing(
                    index_elements=["pseudonym"]
                )
                conn.execute(
                    stmt, [{"pseudonym": p, "erasure_id": eid, "requested_at": now} for p in part]
                )
            steps = _insert(self.engine, erasure_steps).on_conflict_do_nothing(
                index_elements=["erasure_id", "store"]
            )
            conn.execute(
                steps,
                [
                    {"erasure_id": eid, "store": s, "requested_at": now}
                    for s in dict.fromkeys(stores)
                ],
            )
        return eid

    def confirm(self, erasure_id: str, store: str) -> None:
        """A store says the erasure is done there (idempotent)."""
        es = erasure_steps
        with self.engine.begin() as conn:
            conn.execute(
                update(es)
                .where(
                    es.c.erasure_id == erasure_id,
                    es.c.store == store,
                    es.c.confirmed_at.is_(None),
                )
                .values(confirmed_at=utcnow())
            )

    def erased_among(self, pseudonyms: Iterable[str]) -> set[str]:
        """Which of these pseudonyms are tombstoned."""
        wanted = sorted({p for p in pseudonyms if p})
        found: set[str] = set()
        ep = erased_people
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                part = wanted[start : start + _CHUNK]
                found.update(
                    conn.execute(select(ep.c.pseudonym).where(ep.c.pseudonym.in_(part))).scalars()
                )
        return found

    def pseudonyms_of(self, erasure_ids: Iterable[str]) -> set[str]:
        """The tombstoned pseudonyms that these erasures recorded first."""
        ids = sorted(set(erasure_ids))
        ep = erased_people
        if not ids:
            return set()
        with self.engine.connect() as conn:
            return set(
                conn.execute(select(ep.c.pseudonym).where(ep.c.erasure_id.in_(ids))).scalars()
            )

    def waiting(self, store: str) -> list[str]:
        """Erasures whose step at ``store`` is not confirmed, oldest first."""
        es = erasure_steps
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(es.c.erasure_id)
                    .where(es.c.store == store, es.c.confirmed_at.is_(None))
                    .order_by(es.c.requested_at, es.c.erasure_id)
                ).scalars()
            )

    def pending(self) -> list[dict[str, Any]]:
        """Erasures not yet confirmed by every store: id, when asked, how many people, and
        which stores still have to confirm (no pseudonym is shown)."""
        es, ep = erasure_steps, erased_people
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(es.c.erasure_id, es.c.store, es.c.requested_at)
                .where(es.c.confirmed_at.is_(None))
                .order_by(es.c.requested_at, es.c.erasure_id, es.c.store)
            ).all()
            ids = sorted({row.erasure_id for row in rows})
            people: dict[str, int] = {}
            if ids:
                people = {
                    eid: int(n)
                    for eid, n in conn.execute(
                        select(ep.c.erasure_id, func.count())
                        .where(ep.c.erasure_id.in_(ids))
                        .group_by(ep.c.erasure_id)
                    )
                }
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            item = out.setdefault(
                row.erasure_id,
                {
                    "erasure_id": row.erasure_id,
                    "requested_at": as_utc(row.requested_at).isoformat(),
                    "people": people.get(row.erasure_id, 0),
                    "waiting_for": [],
                },
            )
            item["waiting_for"].append(row.store)
        return list(out.values())

    def counts(self) -> dict[str, int]:
        """How many people are tombstoned, and how many erasures are still pending."""
        es, ep = erasure_steps, erased_people
        with self.engine.connect() as conn:
            people = conn.execute(select(func.count()).select_from(ep)).scalar_one()
            pending = conn.execute(
                select(func.count(func.distinct(es.c.erasure_id))).where(
                    es.c.confirmed_at.is_(None)
                )
            ).scalar_one()
        return {"erased_people": int(people), "pending_erasures": int(pending)}
