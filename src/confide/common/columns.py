"""The column types every party's store shares, defined once.

- :data:`UTC_DATETIME`: a moment with its zone (``TIMESTAMP WITH TIME ZONE`` on PostgreSQL; on
  SQLite, which keeps no zone, read it back through :func:`confide.common.clock.as_utc`).
- :data:`SERIAL_ID`: an auto-incrementing key: SQLite only auto-increments an ``INTEGER PRIMARY
  KEY``; PostgreSQL gets a ``BIGINT`` identity.

Migrations keep their own literal types: a migration records the schema as it was.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, DateTime, Integer

UTC_DATETIME = DateTime(timezone=True)
SERIAL_ID = BigInteger().with_variant(Integer(), "sqlite")
