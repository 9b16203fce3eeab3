"""The waiting-period rule: from which day one person's rows may leave the practice.

A person may be uploaded once ``weeks`` have passed since they were told: since their notice
was sent, or, if it came back (returned or undeliverable), since the practice confirmed their
address or told them another way. A notice that came back and is unresolved holds them
indefinitely; so does having no notice at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from confide.rollout.model import BLOCKING, NoticeStatus


class Held(StrEnum):
    """Why a person's rows stay at the practice (counted, never listed, at the hub)."""

    NO_NOTICE = "no_notice"
    WAITING = "waiting"
    UNDELIVERABLE = "undeliverable"


@dataclass(frozen=True)
class NoticeRecord:
    sent_on: date
    status: NoticeStatus
    resolved_on: date | None = None


def told_on(record: NoticeRecord) -> date | None:
    """The day the person counts as told (None: not yet)."""
    if record.status in BLOCKING:
        return record.resolved_on
    return record.sent_on


def cleared_on(record: NoticeRecord | None, weeks: int) -> date | None:
    """The first day the person's rows may leave (None: not until something changes)."""
    if record is None:
        return None
    told = told_on(record)
    return None if told is None else told + timedelta(weeks=weeks)


def held(record: NoticeRecord | None, weeks: int, today: date) -> Held | None:
    """Why the person is held on ``today`` (None: their rows may leave)."""
    if record is None:
        return Held.NO_NOTICE
    if told_on(record) is None:
        return Held.UNDELIVERABLE
    clear = cleared_on(record, weeks)
    return Held.WAITING if clear is None or today < clear else None
