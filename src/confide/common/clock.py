"""The one clock: every "now" in Confide comes from here, timezone-aware and in UTC.

Stores that keep naive timestamps (SQLite columns without a zone) take :func:`naive_utcnow`;
everything else takes :func:`utcnow`. One place to read the time is one place to fake it in a
test and one rule for what a timestamp means.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def naive_utcnow() -> datetime:
    """The current UTC time without a zone, for columns stored naive."""
    return utcnow().replace(tzinfo=None)
