"""The one clock: every "now" in Confide comes from here, timezone-aware and in UTC.

Stores that keep naive timestamps (SQLite columns without a zone) take :func:`naive_utcnow`;
everything else takes :func:`utcnow`. A timestamp read back from such a column is made aware
again with :func:`as_utc`. One place to read the time is one place to fake it in a test and
one rule for what a timestamp means.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def naive_utcnow() -> datetime:
    """The current UTC time without a zone, for columns stored naive."""
    return utcnow().replace(tzinfo=None)


def as_utc(moment: datetime) -> datetime:
    """``moment`` aware: a naive value (read back from a naive column) is taken to be UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
