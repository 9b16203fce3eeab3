"""Shared fixtures.

``opstore`` runs a test once on SQLite and once on PostgreSQL. PostgreSQL is required: when
the server is unreachable the PostgreSQL runs fail (they never skip), because the operational
store must be proven on the database production uses.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get(
    "CONFIDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _drop_schemas(prefix: str) -> None:
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"),
            {"p": prefix + "%"},
        ).all()
        for (name,) in rows:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def opstore(request, monkeypatch, tmp_path: Path) -> str:
    """Point every party's operational store at SQLite (in tmp_path) or a fresh PostgreSQL
    schema set; returns the backend name."""
    if request.param == "sqlite":
        monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
        return "sqlite"
    try:
        probe = create_engine(POSTGRES_URL)
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
    except Exception as exc:  # any failure to connect is the same failure
        pytest.fail(f"PostgreSQL is required for the operational store tests: {exc}")
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    monkeypatch.setenv("CONFIDE_DATABASE_URL", POSTGRES_URL)
    monkeypatch.setenv("CONFIDE_DATABASE_SCHEMA_PREFIX", prefix)
    request.addfinalizer(lambda: _drop_schemas(prefix))
    return "postgresql"


def _drop_roles(prefix: str) -> None:
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


# Java options that shorten a short-lived JVM's warm-up (tests run small queries only).
SPARK_TEST_JAVA = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One local Spark session per test worker (the JVM starts once), bound to 127.0.0.1.

    Skips only when pyspark is not installed; a JVM that fails to start is a failure."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: the Spark engine is absent")
    from confide.tre.spark_session import local_session

    session = local_session(
        tmp_path_factory.mktemp("spark"),
        threads=2,
        memory="768m",
        shuffle_partitions=2,
        app_name="confide-tests",
        java_options=SPARK_TEST_JAVA,
    )
    yield session
    session.stop()
