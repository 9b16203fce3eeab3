"""The operational store: SQLAlchemy engines and Alembic migrations for each party.

Each party that keeps operational state (choices, access, ledger, hub submissions) owns its own
database: by default a SQLite file in its folder under ``--home``; in production a PostgreSQL
URL. With PostgreSQL every party gets its own schema in one database, so the parties stay
apart there too.

Configuration: ``CONFIDE_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@localhost/test``)
switches every party to PostgreSQL; ``CONFIDE_DATABASE_SCHEMA_PREFIX`` prefixes the schema names
(tests use it to keep runs apart).

Each party keeps its migrations in ``confide/<party>/migrations`` (an Alembic script folder with
its own version table), applied by :func:`migrate` when the party opens its store.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text

from confide.common import settings


def database_url(party: str, folder: Path) -> str:
    """The URL a party's store lives at (SQLite in its folder unless configured otherwise)."""
    url = settings.value(settings.DATABASE_URL.name)
    if url:
        return url
    return f"sqlite:///{folder / f'{party}.db'}"


def schema_for(party: str) -> str | None:
    """The PostgreSQL schema of a party's tables (None on SQLite)."""
    if not settings.value(settings.DATABASE_URL.name):
        return None
    prefix = settings.value(settings.DATABASE_SCHEMA_PREFIX.name)
    return f"{prefix}{party}"


def make_engine(party: str, folder: Path) -> Engine:
    """An engine for a party's store; SQLite gets WAL and foreign keys, PostgreSQL a schema."""
    url = database_url(party, folder)
    schema = schema_for(party)
    if url.startswith("sqlite"):
        return sqlite_engine(url)
    engine = create_engine(url, pool_pre_ping=True)
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def sqlite_engine(url: str) -> Engine:
    """A SQLite engine with WAL, normal syncing and foreign keys (for a party's own file)."""
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial wiring
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


_MIGRATING = threading.Lock()


def migrate(engine: Engine, party: str, scripts: Path | None = None) -> None:
    """Bring a party's store up to its latest migration (safe to call every time).

    Alembic's command machinery is not thread-safe, so migrations in one process run one at
    a time; across processes the database's own locking (and Alembic's version table) decide.
    ``scripts``: a migrations folder other than ``confide/<party>/migrations``.
    """
    with _MIGRATING:
        _migrate(engine, party, scripts)


def _migrate(engine: Engine, party: str, scripts: Path | None = None) -> None:
    script_location = scripts or Path(__file__).resolve().parent.parent / party / "migrations"
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["engine"] = engine
    # A party kept in SQLite whatever the others use (a witness) has no schema to go in.
    config.attributes["schema"] = None if engine.dialect.name == "sqlite" else schema_for(party)
    config.attributes["party"] = party
    command.upgrade(config, "head")
