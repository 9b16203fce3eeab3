"""The roll-out's vocabulary: where the gate is consulted, a practice's participation, a
notice's delivery, and the settings operators can change."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

DEFAULT_WAITING_WEEKS = 8


class Point(StrEnum):
    """The three places data moves on; the gate is consulted at each."""

    EXTRACTION = "extraction"  # the practice agent writing a submission
    INGEST = "ingest"  # the hub accepting one
    RELEASE = "release"  # the TRE running a query towards a release


class Participation(StrEnum):
    """A practice's own decision (OpenSAFELY's activation by each practice is the model)."""

    JOINED = "joined"
    DECLINED = "declined"
    PAUSED = "paused"


class NoticeStatus(StrEnum):
    """Where one person's notice is. ``returned`` and ``undeliverable`` hold their rows back
    until the practice confirms the address or tells them another way."""

    SENT = "sent"
    DELIVERED = "delivered"
    RETURNED = "returned"
    UNDELIVERABLE = "undeliverable"


BLOCKING = frozenset({NoticeStatus.RETURNED, NoticeStatus.UNDELIVERABLE})


class Resolution(StrEnum):
    """How a practice resolves a notice that came back."""

    ADDRESS_CONFIRMED = "address_confirmed"
    TOLD_ANOTHER_WAY = "told_another_way"


class Channel(StrEnum):
    LETTER = "letter"
    EMAIL = "email"
    NHS_APP = "nhs_app"


def waiting(weeks: int) -> timedelta:
    return timedelta(weeks=weeks)
