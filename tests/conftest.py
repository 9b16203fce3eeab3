"""Shared fixtures.

``opstore`` runs a test once on SQLite and once on PostgreSQL. PostgreSQL is required: when
the server is unreachable the PostgreSQL runs fail (they never skip), because the operational
store must be proven on the database production uses.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from postgres_helpers import POSTGRES_URL, drop_schemas
from sqlalchemy import create_engine, text


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
    request.addfinalizer(lambda: drop_schemas(prefix))
    return "postgresql"


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
