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

import contextlib
import fcntl
import hashlib
import threading
from collections.abc import Iterator
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
            # Asked first: a party's own role may use its schema but not create schemas.
            found = conn.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
            ).first()
            if found is None:
                # Two processes creating the same schema at once collide even with IF NOT
                # EXISTS; the transaction-scoped lock makes the second wait, then find it.
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _lock_key(f"schema:{schema}")},
                )
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name (PostgreSQL's lock key space)."""
    digest = hashlib.sha256(f"confide-migrations:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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
    """Bring a party's store up to its latest migration (safe to call every time, from any
    number of processes at once).

    Migrations run once, under a lock: one thread at a time in a process (Alembic's command
    machinery is not thread-safe), and one process at a time per store: a lock file beside a
    SQLite database, a session advisory lock on PostgreSQL. Whoever waits finds the store
    already at head, and Alembic's version table makes that a no-op.
    ``scripts``: a migrations folder other than ``confide/<party>/migrations``.
    """
    with _MIGRATING, _store_lock(engine, party):
        _migrate(engine, party, scripts)


def open_store(party: str, folder: Path, scripts: Path | None = None) -> Engine:
    """The engine of ``party``'s store in ``folder``, migrated to its latest version: what
    every party does when it opens its store."""
    engine = make_engine(party, folder)
    migrate(engine, party, scripts)
    return engine


@contextlib.contextmanager
def _store_lock(engine: Engine, party: str) -> Iterator[None]:
    """Hold the per-store, cross-process migration lock."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = Path(database).with_name(f".{Path(database).name}.migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    key = _lock_key(schema_for(party) or party)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


def _migrate(engine: Engine, party: str, scripts: Path | None = None) -> None:
    script_location = scripts or Path(__file__).resolve().parent.parent / party / "migrations"
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["engine"] = engine
    # A party kept in SQLite whatever the others use (a witness) has no schema to go in.
    config.attributes["schema"] = None if engine.dialect.name == "sqlite" else schema_for(party)
    config.attributes["party"] = party
    command.upgrade(config, "head")
