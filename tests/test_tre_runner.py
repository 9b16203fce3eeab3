"""The runner: bounded time and result size, and a locked-down connection that blocks file
access and settings changes even for SQL the guard and the population check never saw."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from confide.tre.aggregation import AggregationPlan, plan_aggregation
from confide.tre.guard import check_query
from confide.tre.person_level import check_person_level
from confide.tre.runner import Limits, QueryLimitExceeded, lock_down, run_aggregation
from confide.tre.translate import read_query

ALLOWED = {"events": {"patient_id", "code"}}
BY_CODE = "SELECT code, count(DISTINCT patient_id) AS n FROM events GROUP BY code"


def plan(sql: str = BY_CODE) -> AggregationPlan:
    definition = read_query(sql, ALLOWED)
    population = check_person_level(check_query(definition.population, ALLOWED))
    return plan_aggregation(population, definition, dialect="duckdb")


def raw(keyed: str) -> AggregationPlan:
    """A plan whose first statement is SQL that skipped every check: the connection must
    still hold."""
    made = plan()
    return AggregationPlan(keyed, made.cells, made.sketches, made.dimensions, made.measures,
                           made.levels)  # fmt: skip


@pytest.fixture
def sandbox(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    view_file = tmp_path / "events.parquet"
    pq.write_table(
        pa.table({"patient_id": [f"p{i % 50}" for i in range(500)], "code": ["A", "B"] * 250}),
        view_file,
    )
    pq.write_table(pa.table({"secret": ["x"]}), tmp_path / "other.parquet")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{view_file}')")
    con.execute(
        "CREATE TABLE __record_keys AS SELECT DISTINCT patient_id, hash(patient_id) % 4294967296 "
        "AS __rkey, hash(patient_id) // 16 AS __sid, 0 AS __chk, 0 AS __b0, 16 AS __b1, "
        "32 AS __b2, 48 AS __b3 FROM events"
    )
    lock_down(con, Limits(memory="256MB", threads=1), readable=[view_file])
    return con


def test_an_aggregation_runs_over_the_view_files(sandbox: duckdb.DuckDBPyConnection) -> None:
    cells, sketches = run_aggregation(sandbox, plan(), Limits(), sketches=True)
    people = sorted((r["__d0"], r["__n"]) for r in cells.to_pylist())
    assert people == [("A", 25), ("B", 25)]  # people, not rows (each has 5 of each code)
    assert sketches is not None and sketches.num_rows > 0


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{dir}/other.parquet')",
        "SELECT * FROM read_csv('{dir}/notes.csv')",
        "SELECT * FROM read_text('{dir}/notes.csv')",
    ],
)
def test_the_connection_blocks_file_access_the_checks_missed(
    sandbox: duckdb.DuckDBPyConnection, tmp_path: Path, sql: str
) -> None:
    with pytest.raises(QueryLimitExceeded, match="outside the project's views"):
        run_aggregation(sandbox, raw(sql.format(dir=tmp_path)), Limits(), sketches=False)


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO '{dir}/leak.csv'",
        "ATTACH '{dir}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
    ],
)
def test_the_connection_refuses_file_and_extension_statements(
    sandbox: duckdb.DuckDBPyConnection, tmp_path: Path, sql: str
) -> None:
    with pytest.raises(duckdb.Error):
        sandbox.execute(sql.format(dir=tmp_path))
    assert not (tmp_path / "leak.csv").exists()
    assert not (tmp_path / "other.duckdb").exists()


@pytest.mark.parametrize(
    "sql", ["SET enable_external_access = true", "SET memory_limit = '100GB'", "SET threads = 64"]
)
def test_the_configuration_is_locked(sandbox: duckdb.DuckDBPyConnection, sql: str) -> None:
    with pytest.raises(duckdb.Error, match="locked"):
        sandbox.execute(sql)


def test_long_queries_are_stopped(sandbox: duckdb.DuckDBPyConnection) -> None:
    slow = raw("SELECT 1 AS __level, 'x' AS __d0, a.range AS __pid FROM range(1000000000000) a")
    with pytest.raises(QueryLimitExceeded, match=r"more than 0.3 seconds"):
        run_aggregation(sandbox, slow, Limits(seconds=0.3), sketches=False)
    # The connection is still usable afterwards.
    cells, _ = run_aggregation(sandbox, plan(), Limits(), sketches=False)
    assert cells.num_rows == 2


def test_large_results_are_refused(sandbox: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryLimitExceeded, match="more than 1 cells"):
        run_aggregation(sandbox, plan(), Limits(max_rows=1), sketches=False)


def test_memory_limit_is_parsed_strictly() -> None:
    with pytest.raises(Exception, match="must look like"):
        lock_down(duckdb.connect(), Limits(memory="1GB'; SET x=1; --"))
