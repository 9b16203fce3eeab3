"""The roll-out party's store: settings, areas and their waves, practices' participation, the
national switch, notice counts per practice and week, and the history of every change.

It holds no identifier: people appear here only as counts. The notice register that knows who
was told lives at each practice (:mod:`confide.rollout.notices`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from confide.common import opstore
from confide.common.clock import utcnow
from confide.common.columns import UTC_DATETIME
from confide.common.home import Home
from confide.rollout.model import DEFAULT_WAITING_WEEKS, Participation

metadata = MetaData()
settings = Table(
    "settings",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", Text, nullable=False),
)
areas = Table(
    "areas",
    metadata,
    Column("area", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("reason", Text),
    Column("changed_at", UTC_DATETIME, nullable=False),
)
practices = Table(
    "practices",
    metadata,
    Column("ods", String(8), primary_key=True),
    Column("name", String(200)),
    Column("area", String(40)),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("changed_at", UTC_DATETIME, nullable=False),
)
history = Table(
    "history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTC_DATETIME, nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("reason", Text),
)
notice_counts = Table(
    "notice_counts",
    metadata,
    Column("practice", String(8), primary_key=True),
    Column("week", Date, primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
)


@dataclass(frozen=True)
class Area:
    area: str
    name: str
    wave: int
    start_date: date
    paused: bool
    reason: str | None


@dataclass(frozen=True)
class Practice:
    ods: str
    name: str | None
    area: str | None
    status: Participation
    reason: str | None


@dataclass(frozen=True)
class National:
    paused: bool
    reason: str | None
    since: str | None


@dataclass(frozen=True)
class RolloutState:
    """Everything the gate needs, read in one go."""

    national: National
    started: bool
    waiting_weeks: int
    areas: dict[str, Area]
    practices: dict[str, Practice]


class RolloutStore:
    """The roll-out party's tables (SQLite in its folder, or its PostgreSQL schema)."""

    def __init__(self, home: Home) -> None:
        self.engine = opstore.open_store("rollout", home.party("rollout"))

    def close(self) -> None:
        self.engine.dispose()

    # --- reading ----------------------------------------------------------------------------
    def state(self) -> RolloutState:
        with self.engine.connect() as conn:
            values = {row.name: row.value for row in conn.execute(select(settings))}
            area_rows = conn.execute(select(areas)).all()
            practice_rows = conn.execute(select(practices)).all()
        national = National(
            values.get("national_paused") == "1",
            values.get("national_reason"),
            values.get("national_since"),
        )
        return RolloutState(
            national=national,
            started=values.get("started") == "1",
            waiting_weeks=int(values.get("waiting_weeks", DEFAULT_WAITING_WEEKS)),
            areas={
                row.area: Area(row.area, row.name, row.wave, row.start_date, row.paused, row.reason)
                for row in area_rows
            },
            practices={
                row.ods: Practice(
                    row.ods, row.name, row.area, Participation(row.status), row.reason
                )
                for row in practice_rows
            },
        )

    def history(self, limit: int = 200) -> list[dict[str, object]]:
        query = select(history).order_by(history.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def notice_counts(self) -> dict[str, dict[str, int]]:
        """Per practice: notices by status (all weeks)."""
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(notice_counts)):
                per = out.setdefault(row.practice, {})
                per[row.status] = per.get(row.status, 0) + int(row._mapping["count"])
        return out

    # --- writing (each change with its history row, in one transaction) ---------------------
    def _log(self, conn, action: str, subject: str, actor: str, reason: str | None) -> None:
        conn.execute(
            insert(history).values(
                at=utcnow(), action=action, subject=subject, actor=actor, reason=reason
            )
        )

    def _set(self, conn, name: str, value: str) -> None:
        conn.execute(delete(settings).where(settings.c.name == name))
        conn.execute(insert(settings).values(name=name, value=value))

    def set_settings(
        self, values: dict[str, str], *, action: str, actor: str, reason: str | None = None
    ) -> None:
        with self.engine.begin() as conn:
            for name, value in values.items():
                self._set(conn, name, value)
            self._log(conn, action, "national", actor, reason)

    def put_area(self, area: Area, *, action: str, actor: str) -> None:
        values = {
            "name": area.name,
            "wave": area.wave,
            "start_date": area.start_date,
            "paused": area.paused,
            "reason": area.reason,
            "changed_at": utcnow(),
        }
        with self.engine.begin() as conn:
            found = conn.execute(select(areas.c.area).where(areas.c.area == area.area)).first()
            if found is None:
                conn.execute(insert(areas).values(area=area.area, **values))
            else:
                conn.execute(update(areas).where(areas.c.area == area.area).values(**values))
            self._log(conn, action, area.area, actor, area.reason)

    def put_practice(self, practice: Practice, *, action: str, actor: str) -> None:
        values = {
            "name": practice.name,
            "area": practice.area,
            "status": practice.status.value,
            "reason": practice.reason,
            "changed_at": utcnow(),
        }
        with self.engine.begin() as conn:
            found = conn.execute(
                select(practices.c.ods).where(practices.c.ods == practice.ods)
            ).first()
            if found is None:
                conn.execute(insert(practices).values(ods=practice.ods, **values))
            else:
                conn.execute(
                    update(practices).where(practices.c.ods == practice.ods).values(**values)
                )
            self._log(conn, action, practice.ods, actor, practice.reason)

    def set_held(self, practice: str, counts: dict[str, int]) -> None:
        """The numbers the practice's latest extract held back (by reason): published."""
        with self.engine.begin() as conn:
            self._set(conn, f"held:{practice}", json.dumps(counts, sort_keys=True))

    def held(self) -> dict[str, dict[str, int]]:
        query = select(settings).where(settings.c.name.like("held:%"))
        with self.engine.connect() as conn:
            return {row.name[5:]: json.loads(row.value) for row in conn.execute(query)}

    def set_notice_counts(self, practice: str, weeks: dict[date, dict[str, int]]) -> None:
        """Replace a practice's published notice figures (per week and status)."""
        with self.engine.begin() as conn:
            conn.execute(delete(notice_counts).where(notice_counts.c.practice == practice))
            for week, counts in weeks.items():
                for status, n in counts.items():
                    conn.execute(
                        insert(notice_counts).values(
                            practice=practice, week=week, status=status, count=n
                        )
                    )
