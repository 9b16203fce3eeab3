"""The body of every party's Alembic ``env.py``: run migrations on the engine we were given.

A party's ``migrations/env.py`` is two lines: import this module and call :func:`run`. The
version table is per party (``alembic_version_<party>``) so parties sharing a PostgreSQL
database never step on each other.
"""

from __future__ import annotations

from alembic import context


def run() -> None:
    config = context.config
    engine = config.attributes["engine"]
    schema = config.attributes.get("schema")
    party = config.attributes["party"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            version_table=f"alembic_version_{party}",
            version_table_schema=schema,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
