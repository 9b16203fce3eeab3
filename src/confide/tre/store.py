"""The TRE's own state: queries and outcomes, checkers' votes, privacy budgets, project keys.

The operational tables live in the TRE's store (SQLite in ``<home>/tre`` by default, its own
schema on PostgreSQL). Project keys are secret files under ``<home>/tre/keys/projects``: one
random 32-byte key per project, made on first use and never shown to anyone, so project
pseudonyms cannot be recomputed (or joined across projects) outside the TRE.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from confide.common import opstore
from confide.common.clock import as_utc, utcnow
from confide.common.columns import UTC_DATETIME
from confide.common.errors import InvalidInput, NotFound
from confide.common.home import Home
from confide.common.secrets import load_or_create

metadata = MetaData()
queries = Table(
    "queries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project_id", String(80), nullable=False),
    Column("project_slug", String(80), nullable=False),
    Column("organisation_id", String(80), nullable=False),
    Column("person_id", String(80), nullable=False),
    Column("sql_text", Text, nullable=False),
    Column("sql_digest", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("preset", String(32), nullable=False),
    Column("epsilon", Float),
    Column("status", String(20), nullable=False),
    Column("reason", Text),
    Column("result", JSON),
    Column("release_id", String(32)),
    Column("release", JSON),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("decided_at", UTC_DATETIME),
    Column("definition", JSON),  # the query definition it was read as (model.as_dict)
    Column("detail", Text),  # operators only: what went wrong inside, never shown to researchers
)
votes = Table(
    "votes",
    metadata,
    Column("query_id", String(32), ForeignKey("queries.id"), primary_key=True),
    Column("checker_id", String(80), primary_key=True),
    Column("approve", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTC_DATETIME, nullable=False),
)
budgets = Table(
    "budgets",
    metadata,
    Column("project_id", String(80), primary_key=True),
    Column("total", Float, nullable=False),
    Column("spent", Float, nullable=False),
    Column("delta_spent", Float, nullable=False),
)
spends = Table(
    "spends",
    metadata,
    Column("query_id", String(32), primary_key=True),
    Column("project_id", String(80), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("at", UTC_DATETIME, nullable=False),
)

_ID = re.compile(r"^[0-9a-f]{32}$")


def query_not_found() -> NotFound:
    """One answer for "no such query" and "another organisation's query"."""
    return NotFound(
        "No query with that id is visible to you.",
        hint="Check the id printed when the query ran (`confide query run`).",
    )


class Running(NamedTuple):
    """How many queries are running: overall, and per project id."""

    overall: int
    per_project: dict[str, int]


@dataclass(frozen=True)
class Vote:
    """One output checker's vote on a held output."""

    checker_id: str
    approve: bool
    reason: str
    at: datetime


@dataclass(frozen=True)
class QueryRecord:
    """One stored query and its outcome (``result`` is the checked output, or the held one)."""

    id: str
    project_id: str
    project_slug: str
    organisation_id: str
    person_id: str
    sql_text: str
    sql_digest: str
    mode: str
    preset: str
    epsilon: float | None
    status: str
    reason: str | None
    result: dict[str, Any] | None
    release_id: str | None
    release: dict[str, Any] | None
    created_at: datetime
    decided_at: datetime | None
    definition: dict[str, Any] | None = None
    detail: str | None = None


class TreStore:
    """The TRE's operational store and secret folder."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder

    @classmethod
    def open(cls, home: Home) -> TreStore:
        folder = home.party("tre")
        return cls(opstore.open_store("tre", folder), folder)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> TreStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- files ------------------------------------------------------------------------------

    def project_key(self, project_id: str) -> bytes:
        """The project's secret pseudonym key (32 random bytes, made on first use)."""
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", project_id)
        return load_or_create(
            self.folder / "keys" / "projects" / f"{safe}.key", lambda: os.urandom(32)
        )

    def record_key_secret(self) -> bytes:
        """The TRE's secret for people's record keys and sketch ids (the cell-key method and
        differencing checks): 32 random bytes, made on first use, the same for every project
        so the same people always give the same perturbation."""
        return load_or_create(self.folder / "keys" / "record-keys.key", lambda: os.urandom(32))

    @property
    def sketches(self) -> Path:
        """Contributor sketches of released cells (see ``differencing``)."""
        path = self.folder / "sketches"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @property
    def releases(self) -> Path:
        """Where released outputs' contributor commitments are kept (see ``service``)."""
        path = self.folder / "releases"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @property
    def mapping_cache(self) -> Path:
        """Per-project pseudonym mappings, one per record-store version (see ``views``)."""
        path = self.folder / "cache" / "people"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @property
    def cohorts(self) -> Path:
        """Built cohorts: each project's people per store version and exclusion set."""
        path = self.folder / "cache" / "cohorts"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def drop_cache(self) -> None:
        """Remove every cohort and pseudonym mapping: after an erasure they may hold derived
        data of people who left; the next query of each project builds afresh."""
        shutil.rmtree(self.folder / "cache", ignore_errors=True)

    @property
    def pending(self) -> Path:
        """Contributor commitments of outputs held for review, moved to ``releases`` on
        approval and deleted on rejection."""
        path = self.folder / "pending"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    # --- queries ----------------------------------------------------------------------------

    def save_query(self, record: QueryRecord) -> None:
        values = {column.name: getattr(record, column.name) for column in queries.columns}
        with self.engine.begin() as conn:
            conn.execute(insert(queries).values(**values))

    def update_query(self, record: QueryRecord) -> None:
        """Store a running query's outcome (its row exists since it started)."""
        values = {
            column.name: getattr(record, column.name)
            for column in queries.columns
            if column.name != "id"
        }
        with self.engine.begin() as conn:
            conn.execute(update(queries).where(queries.c.id == record.id).values(**values))

    def running(self, started_after: datetime) -> Running:
        """Queries running now (started after ``started_after``): overall and per project."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(queries.c.project_id).where(
                    queries.c.status == "running", queries.c.created_at >= started_after
                )
            ).all()
        per: dict[str, int] = {}
        for (project_id,) in rows:
            per[project_id] = per.get(project_id, 0) + 1
        return Running(len(rows), per)

    def stale_running(self, started_before: datetime) -> list[QueryRecord]:
        """Queries still marked running that started before ``started_before``: their process
        ended without an outcome (a crash), so nobody will finish them."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(queries).where(
                    queries.c.status == "running", queries.c.created_at < started_before
                )
            ).all()
        return [_record(row) for row in rows]

    def query(self, query_id: str) -> QueryRecord:
        if not _ID.match(str(query_id)):
            raise query_not_found()
        with self.engine.connect() as conn:
            row = conn.execute(select(queries).where(queries.c.id == query_id)).first()
        if row is None:
            raise query_not_found()
        return _record(row)

    def queries_of_project(self, project_id: str, limit: int = 50) -> list[QueryRecord]:
        """A project's latest queries, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(queries)
                .where(queries.c.project_id == project_id)
                .order_by(queries.c.created_at.desc())
                .limit(limit)
            ).all()
        return [_record(row) for row in rows]

    def queries_with_status(self, status: str) -> list[QueryRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(queries).where(queries.c.status == status).order_by(queries.c.created_at)
            ).all()
        return [_record(row) for row in rows]

    def decide(
        self,
        query_id: str,
        *,
        from_status: str,
        to_status: str,
        reason: str | None,
        release: dict[str, Any] | None = None,
    ) -> bool:
        """Compare-and-set the status; False when someone else decided first."""
        values: dict[str, Any] = {"status": to_status, "reason": reason, "decided_at": utcnow()}
        if release is not None:
            values["release"] = release
        with self.engine.begin() as conn:
            done = conn.execute(
                update(queries)
                .where(queries.c.id == query_id, queries.c.status == from_status)
                .values(**values)
            )
        return done.rowcount == 1

    # --- votes ------------------------------------------------------------------------------

    def add_vote(self, query_id: str, checker_id: str, approve: bool, reason: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(votes).values(
                        query_id=query_id,
                        checker_id=checker_id,
                        approve=approve,
                        reason=reason,
                        at=utcnow(),
                    )
                )
        except IntegrityError:
            raise InvalidInput(
                "You have already voted on this output; each checker votes once."
            ) from None

    def votes(self, query_id: str) -> list[Vote]:
        """The checkers' votes on an output, in the order they were cast."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(votes).where(votes.c.query_id == query_id).order_by(votes.c.at)
            ).all()
        return [Vote(row.checker_id, row.approve, row.reason, row.at) for row in rows]


def _record(row: Any) -> QueryRecord:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    if data["decided_at"] is not None:
        data["decided_at"] = as_utc(data["decided_at"])
    return QueryRecord(**data)
