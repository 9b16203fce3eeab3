"""Engine parity: the legitimate query suite gives identical results (before output checking)
on every engine that is present. DuckDB is the reference; SQLite (always present, in-process)
runs the queries it can express after ``guard.transpile``; Spark (the ``spark`` fixture: one
local session per test worker) runs the whole suite whenever pyspark is installed, which the
``dev`` extra does."""

from __future__ import annotations

import math
import sqlite3
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from confide.tre.rewrite import plan_contributors

from confide.tre.guard import check_query, transpile

ALLOWED = {
    "patients": {"patient_id", "sex", "birth_year"},
    "events": {"patient_id", "code", "date", "value"},
    "medications": {"patient_id", "code", "date"},
}
SUITE: dict[str, str] = {
    "by_sex": "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex",
    "prevalence_by_age_band_and_sex": (
        "SELECT CASE WHEN 2024 - p.birth_year < 40 THEN '0-39' WHEN 2024 - p.birth_year < 65 "
        "THEN '40-64' ELSE '65+' END AS band, p.sex, count(DISTINCT p.patient_id) AS n "
        "FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code = 'D' "
        "GROUP BY 1, 2"
    ),
    "events_by_code": "SELECT code, count(*) AS n, avg(value) AS v FROM events GROUP BY code",
    "filtered_counts": (
        "SELECT p.sex, count(*) FILTER (WHERE e.value > 50) AS high, "
        "sum(CASE WHEN e.code = 'D' THEN 1 ELSE 0 END) AS d FROM patients p "
        "JOIN events e ON e.patient_id = p.patient_id GROUP BY p.sex"
    ),
    "cte_per_patient": (
        "WITH firsts AS (SELECT patient_id, min(date) AS first FROM events GROUP BY patient_id) "
        "SELECT p.sex, count(*) AS n FROM firsts f JOIN patients p ON p.patient_id = "
        "f.patient_id WHERE f.first >= DATE '2015-01-01' GROUP BY p.sex"
    ),
    "medication_after_diagnosis": (
        "WITH dx AS (SELECT patient_id, min(date) AS dx_date FROM events WHERE code = 'D' "
        "GROUP BY patient_id), rx AS (SELECT patient_id, min(date) AS rx_date FROM medications "
        "GROUP BY patient_id) SELECT p.sex, count(*) AS n FROM dx JOIN rx ON rx.patient_id = "
        "dx.patient_id JOIN patients p ON p.patient_id = dx.patient_id "
        "WHERE rx.rx_date >= dx.dx_date GROUP BY p.sex"
    ),
}
SQLITE_SUITE = set(SUITE)  # every query above is expressible in SQLite after transpiling


def _tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(4)
    n = 300
    ids = [f"{i:032x}" for i in range(n)]
    patients = pa.table(
        {
            "patient_id": ids,
            "sex": rng.choice(["female", "male"], n).tolist(),
            "birth_year": rng.integers(1930, 2010, n).tolist(),
        }
    )
    start = date(2010, 1, 1)
    rows = [
        (pid, str(rng.choice(["D", "A", "H"])), start + timedelta(days=int(rng.integers(0, 5000))),
         float(rng.integers(20, 90)))
        for pid in ids for _ in range(int(rng.integers(1, 4)))
    ]  # fmt: skip
    events = pa.Table.from_pylist(
        [dict(zip(["patient_id", "code", "date", "value"], r, strict=True)) for r in rows]
    )
    meds = [
        (pid, "M", start + timedelta(days=int(rng.integers(0, 5000))))
        for pid in ids
        if rng.random() < 0.5
    ]
    medications = pa.Table.from_pylist(
        [dict(zip(["patient_id", "code", "date"], r, strict=True)) for r in meds]
    )
    return {"patients": patients, "events": events, "medications": medications}


def _normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def cell(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 9)
        if isinstance(value, date):
            return value.isoformat()
        return value

    return sorted((tuple(cell(v) for v in row) for row in rows), key=repr)


def _plan_sql(sql: str) -> str:
    return plan_contributors(check_query(sql, ALLOWED), ALLOWED).sql


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return _tables()


@pytest.fixture(scope="module")
def duck(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    return con


@pytest.fixture(scope="module")
def lite(tables: dict[str, pa.Table]) -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    for name, table in tables.items():
        columns = table.column_names
        con.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
        values = [
            tuple(v.isoformat() if isinstance(v, date) else v for v in row.values())
            for row in table.to_pylist()
        ]
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(columns))})", values)
    return con


@pytest.mark.parametrize("name", sorted(SQLITE_SUITE))
def test_sqlite_matches_duckdb(name: str, duck, lite) -> None:  # type: ignore[no-untyped-def]
    sql = _plan_sql(SUITE[name])
    expected = _normal(duck.execute(sql).fetchall())
    got = _normal(lite.execute(transpile(sql, "sqlite")).fetchall())
    assert expected and len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert all(
            math.isclose(x, y, rel_tol=1e-9) if isinstance(x, float) else x == y
            for x, y in zip(a, b, strict=True)
        ), (name, a, b)


@pytest.fixture(scope="module")
def spark_tables(spark, tables: dict[str, pa.Table]):  # type: ignore[no-untyped-def]
    """The suite's tables as temporary views of a session of their own."""
    session = spark.newSession()
    for table_name, table in tables.items():
        session.createDataFrame(table).createOrReplaceTempView(table_name)
    return session


@pytest.mark.parametrize("name", sorted(SUITE))
def test_spark_matches_duckdb(name: str, duck, spark_tables) -> None:  # type: ignore[no-untyped-def]
    sql = _plan_sql(SUITE[name])
    expected = _normal(duck.execute(sql).fetchall())
    got = _normal([tuple(r) for r in spark_tables.sql(transpile(sql, "spark")).collect()])
    assert expected and len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert all(
            math.isclose(x, y, rel_tol=1e-9) if isinstance(x, float) else x == y
            for x, y in zip(a, b, strict=True)
        ), (name, a, b)
