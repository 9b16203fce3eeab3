"""The practice's notice register: who was told, how, when, and whether it came back.

It lives at the practice, beside the export (``<home>/practice/notices.db``, or its own
PostgreSQL schema), because it is keyed by NHS number. Only counts per week leave it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Column, Date, MetaData, String, Table, insert, select, update

from confide.common import opstore
from confide.common.errors import InvalidInput, NotFound
from confide.common.home import Home
from confide.common.nhs_number import is_valid
from confide.rollout.model import BLOCKING, Channel, NoticeStatus, Resolution
from confide.rollout.waiting import NoticeRecord

SCRIPTS = Path(__file__).resolve().parent / "notice_migrations"

metadata = MetaData()
notices = Table(
    "notices",
    metadata,
    Column("practice", String(8), primary_key=True),
    Column("nhs_number", String(10), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("sent_on", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_on", Date, nullable=False),
    Column("resolution", String(24)),
    Column("resolved_on", Date),
)


def week_of(day: date) -> date:
    """The Monday of ``day``'s week: notices are published per practice and week."""
    return day - timedelta(days=day.weekday())


def _checked(nhs_number: str) -> str:
    number = nhs_number.replace(" ", "")
    if not is_valid(number):
        raise InvalidInput("A notice was given for something that is not a valid NHS number.")
    return number


class NoticeRegister:
    """Notices of the practices using this agent (the practice's own store)."""

    def __init__(self, home: Home) -> None:
        self.engine = opstore.open_store("notices", home.party("practice"), SCRIPTS)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> NoticeRegister:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sent(
        self, practice: str, nhs_numbers: Iterable[str], channel: Channel, on: date
    ) -> Counter[str]:
        """Record notices sent. A person already told keeps their first date; one whose notice
        came back and is sent a new one starts again from this one."""
        out: Counter[str] = Counter()
        with self.engine.begin() as conn:
            for raw in nhs_numbers:
                number = _checked(raw)
                key = (notices.c.practice == practice) & (notices.c.nhs_number == number)
                row = conn.execute(select(notices).where(key)).first()
                fresh = {
                    "channel": channel.value,
                    "sent_on": on,
                    "status": NoticeStatus.SENT.value,
                    "status_on": on,
                    "resolution": None,
                    "resolved_on": None,
                }
                if row is None:
                    conn.execute(
                        insert(notices).values(practice=practice, nhs_number=number, **fresh)
                    )
                elif NoticeStatus(row.status) in BLOCKING and row.resolved_on is None:
                    conn.execute(update(notices).where(key).values(**fresh))
                else:
                    continue
                out[NoticeStatus.SENT.value] += 1
        return out

    def status(self, practice: str, nhs_number: str, status: NoticeStatus, on: date) -> None:
        """A notice was delivered, returned or found undeliverable."""
        self.statuses(practice, [nhs_number], status, on)

    def statuses(
        self, practice: str, nhs_numbers: Iterable[str], status: NoticeStatus, on: date
    ) -> int:
        """Many notices' news at once: all recorded, or none (an unknown person refuses all)."""
        values: dict[str, object] = {"status": status.value, "status_on": on}
        if status in BLOCKING:
            values.update(resolution=None, resolved_on=None)
        done = 0
        with self.engine.begin() as conn:
            for raw in nhs_numbers:
                key = (notices.c.practice == practice) & (notices.c.nhs_number == _checked(raw))
                if conn.execute(update(notices).where(key).values(**values)).rowcount == 0:
                    raise NotFound(
                        f"No notice was sent to the person on line {done + 1} by this practice; "
                        "nothing was recorded."
                    )
                done += 1
        return done

    def resolve(self, practice: str, nhs_number: str, how: Resolution, on: date) -> None:
        """The practice confirmed the address, or told the person another way."""
        self.resolve_many(practice, [nhs_number], how, on)

    def resolve_many(
        self, practice: str, nhs_numbers: Iterable[str], how: Resolution, on: date
    ) -> int:
        """Resolve many notices that came back: all, or none."""
        done = 0
        with self.engine.begin() as conn:
            for raw in nhs_numbers:
                key = (notices.c.practice == practice) & (notices.c.nhs_number == _checked(raw))
                row = conn.execute(select(notices.c.status).where(key)).first()
                if row is None:
                    raise NotFound(
                        f"No notice was sent to the person on line {done + 1} by this practice; "
                        "nothing was recorded."
                    )
                if NoticeStatus(row.status) not in BLOCKING:
                    raise InvalidInput(
                        f"The notice of the person on line {done + 1} did not come back: "
                        "nothing to resolve, so nothing was recorded."
                    )
                conn.execute(
                    update(notices).where(key).values(resolution=how.value, resolved_on=on)
                )
                done += 1
        return done

    def records(self, practice: str) -> dict[str, NoticeRecord]:
        """NHS number → notice, for the agent's hold-back (never leaves the practice)."""
        query = select(
            notices.c.nhs_number, notices.c.sent_on, notices.c.status, notices.c.resolved_on
        ).where(notices.c.practice == practice)
        with self.engine.connect() as conn:
            return {
                row.nhs_number: NoticeRecord(row.sent_on, NoticeStatus(row.status), row.resolved_on)
                for row in conn.execute(query)
            }

    def weekly_counts(self, practice: str) -> dict[date, Counter[str]]:
        """Per week: notices sent, and how many of them were delivered, returned or found
        undeliverable so far. The only figures about notices that leave the practice."""
        out: dict[date, Counter[str]] = {}
        query = select(notices.c.sent_on, notices.c.status).where(notices.c.practice == practice)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                week = out.setdefault(week_of(row.sent_on), Counter())
                week[NoticeStatus.SENT.value] += 1
                if row.status != NoticeStatus.SENT.value:
                    week[row.status] += 1
        return out
