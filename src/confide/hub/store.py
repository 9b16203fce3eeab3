"""The hub's store: which sources are enrolled, and every submission seen."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import JSON, Column, MetaData, String, Table, Text, insert, select, update

from confide.common import opstore
from confide.common.clock import utcnow
from confide.common.columns import UTC_DATETIME
from confide.common.errors import SubmissionRejected
from confide.common.home import Home
from confide.events import outbox as outbox_rows
from confide.events.outbox import outbox_table
from confide.events.types import Event

metadata = MetaData()
sources = Table(
    "sources",
    metadata,
    Column("ods", String(8), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200)),
    Column("verify_key", String(64), nullable=False),
    Column("enrolled_at", UTC_DATETIME, nullable=False),
)
submissions = Table(
    "submissions",
    metadata,
    Column("submission_id", String(80), primary_key=True),
    Column("source", String(8)),
    Column("created_at", String(40)),
    Column("received_at", UTC_DATETIME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("summary", JSON),
)

# Events for other parties (submissions ingested), written with the submission's outcome.
outbox = outbox_table(metadata)


class EnrolledSource(NamedTuple):
    """What the hub holds of an enrolled source: its kind and the key its submissions verify
    against."""

    kind: str
    verify_key: bytes


class HubStore:
    """The hub's own tables: enrolled sources, every submission seen, and the outbox."""

    def __init__(self, home: Home) -> None:
        self.engine = opstore.open_store("hub", home.party("hub"))

    def close(self) -> None:
        self.engine.dispose()

    def enrol(self, ods: str, kind: str, verify_key: bytes, name: str | None = None) -> None:
        """Enrol (or re-key) a source; re-enrolling with the same key changes nothing."""
        now = utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(select(sources).where(sources.c.ods == ods)).first()
            if row is None:
                conn.execute(
                    insert(sources).values(
                        ods=ods, kind=kind, name=name, verify_key=verify_key.hex(), enrolled_at=now
                    )
                )
            elif row.verify_key != verify_key.hex() or row.kind != kind:
                conn.execute(
                    update(sources)
                    .where(sources.c.ods == ods)
                    .values(kind=kind, verify_key=verify_key.hex(), enrolled_at=now)
                )

    def source_key(self, ods: str) -> EnrolledSource:
        """The enrolled source ``ods`` (refused when it is not enrolled)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(sources).where(sources.c.ods == ods)).first()
        if row is None:
            raise SubmissionRejected(
                f"Source {ods} is not enrolled with this hub, so its submission cannot be "
                "authenticated.",
                hint="Ask the Confide operators to enrol the source's public key "
                "(confide hub enrol).",
            )
        return EnrolledSource(row.kind, bytes.fromhex(row.verify_key))

    def sources(self) -> dict[str, str]:
        """Enrolled sources: ODS code → kind."""
        with self.engine.connect() as conn:
            return {
                row.ods: row.kind for row in conn.execute(select(sources.c.ods, sources.c.kind))
            }

    def record(
        self,
        submission_id: str,
        *,
        source: str | None,
        created_at: str | None,
        status: str,
        reason: str | None = None,
        summary: dict[str, Any] | None = None,
        events: tuple[Event, ...] = (),
    ) -> None:
        """Record the outcome of a submission (the latest outcome for an id wins), and the
        events it means for other parties in the same transaction (each at most once)."""
        values = {
            "source": source,
            "created_at": created_at,
            "received_at": utcnow(),
            "status": status,
            "reason": reason,
            "summary": summary,
        }
        with self.engine.begin() as conn:
            done = conn.execute(
                update(submissions)
                .where(submissions.c.submission_id == submission_id)
                .values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(submissions).values(submission_id=submission_id, **values))
            for event in events:
                outbox_rows.write_once(conn, outbox, event)

    def announce(self, events: tuple[Event, ...]) -> int:
        """Put events in the outbox unless they are there already (an ingest whose record
        store commit survived a crash that its outcome did not); how many were new."""
        with self.engine.begin() as conn:
            return sum(outbox_rows.write_once(conn, outbox, e) for e in events)

    def submissions(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(submissions).order_by(submissions.c.received_at)).all()
        return [dict(row._mapping) for row in rows]
