"""PostgreSQL for tests: where it is, and dropping what a test made there.

A module of its own (not the conftest), so tests import it by one unambiguous name.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get(
    "CONFIDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def drop_schemas(prefix: str) -> None:
    """The PostgreSQL schemas a test made (every one whose name starts with its prefix)."""
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"),
            {"p": prefix + "%"},
        ).all()
        for (name,) in rows:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


def drop_roles(prefix: str) -> None:
    """The PostgreSQL roles a test's deployment made (after its schemas are dropped)."""
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        roles = conn.execute(
            text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"), {"p": prefix + "%"}
        ).scalars()
        for role in list(roles):
            conn.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
            conn.execute(text(f'DROP ROLE "{role}"'))
    engine.dispose()
