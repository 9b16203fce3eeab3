"""The tables behind people's sign-in to the staff consoles (``migrations/versions/0002``).

Kept beside, not inside, ``store``: programs never touch them. Nothing secret rests in clear:
a code is kept as an HMAC, an email only as an HMAC (the rate-limit key), a session token as
its SHA-256 digest.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table

from confide.access.store import metadata
from confide.common.columns import SERIAL_ID, UTC_DATETIME

staff_challenges = Table(
    "staff_challenges",
    metadata,
    Column("challenge_id", String(64), primary_key=True),
    Column("person_id", String(32), ForeignKey("people.id"), nullable=True),  # None: a decoy
    Column("subject", String(64), nullable=False),  # HMAC of the email given
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("used_at", UTC_DATETIME, nullable=True),
    Index("ix_staff_challenges_expires_at", "expires_at"),
)

staff_attempts = Table(
    "staff_attempts",
    metadata,
    Column("id", SERIAL_ID, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # "start" or "fail"
    Column("at", UTC_DATETIME, nullable=False),
    Index("ix_staff_attempts_key", "key", "kind", "at"),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("person_id", String(32), ForeignKey("people.id"), nullable=False),
    Column("organisation_id", String(32), ForeignKey("organisations.id"), nullable=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=False),
    Index("ix_staff_sessions_expires_at", "expires_at"),
)
