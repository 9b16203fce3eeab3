"""The runner: bounded time and result size, and a locked-down connection that blocks file
access and settings changes even for SQL the guard never saw."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from confide.tre.guard import check_query
from confide.tre.runner import Limits, QueryLimitExceeded, check_and_run, lock_down, run_checked

ALLOWED = {"events": {"patient_id", "code"}}


@dataclass(frozen=True)
class RawSql:
    """SQL that skipped the guard: the connection must still hold."""

    sql: str


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
    lock_down(con, Limits(memory="256MB", threads=1), readable=[view_file])
    return con


def test_checked_query_runs_over_the_view_files(sandbox: duckdb.DuckDBPyConnection) -> None:
    checked = check_query("SELECT code, count(*) AS n FROM events GROUP BY code", ALLOWED)
    table = run_checked(sandbox, checked, Limits())
    assert sorted(table.to_pylist(), key=lambda r: r["code"]) == [
        {"code": "A", "n": 250},
        {"code": "B", "n": 250},
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{dir}/other.parquet')",
        "SELECT * FROM read_csv('{dir}/notes.csv')",
        "COPY (SELECT 1) TO '{dir}/leak.csv'",
        "ATTACH '{dir}/other.duckdb' AS other",
        "INSTALL httpfs",
    ],
)
def test_the_connection_blocks_file_access_the_guard_missed(
    sandbox: duckdb.DuckDBPyConnection, tmp_path: Path, sql: str
) -> None:
    with pytest.raises(QueryLimitExceeded, match="outside the project's views"):
        run_checked(sandbox, RawSql(sql.format(dir=tmp_path)), Limits())
    assert not (tmp_path / "leak.csv").exists()


@pytest.mark.parametrize(
    "sql", ["SET enable_external_access = true", "SET memory_limit = '100GB'", "SET threads = 64"]
)
def test_the_configuration_is_locked(sandbox: duckdb.DuckDBPyConnection, sql: str) -> None:
    with pytest.raises(duckdb.Error, match="locked"):
        sandbox.execute(sql)


def test_long_queries_are_stopped(sandbox: duckdb.DuckDBPyConnection) -> None:
    slow = RawSql("SELECT count(*) FROM range(1000000000000) a")
    with pytest.raises(QueryLimitExceeded, match=r"more than 0.3 seconds"):
        run_checked(sandbox, slow, Limits(seconds=0.3))
    # The connection is still usable afterwards.
    assert run_checked(sandbox, RawSql("SELECT 1 AS one"), Limits()).num_rows == 1


def test_large_results_are_refused(sandbox: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryLimitExceeded, match="more than 100 rows"):
        run_checked(sandbox, RawSql("SELECT * FROM events"), Limits(max_rows=100))
    with pytest.raises(QueryLimitExceeded, match="more than 300 cells"):
        run_checked(sandbox, RawSql("SELECT * FROM events"), Limits(max_cells=300))


def test_memory_limit_is_parsed_strictly() -> None:
    with pytest.raises(Exception, match="must look like"):
        lock_down(duckdb.connect(), Limits(memory="1GB'; SET x=1; --"))


def test_pipeline_reports_limits_as_refusals(sandbox: duckdb.DuckDBPyConnection) -> None:
    output = check_and_run(
        sandbox,
        "SELECT code, count(*) AS n FROM events GROUP BY code",
        ALLOWED,
        Limits(max_rows=1),
    )
    assert output.status == "refused"
    assert output.reasons == ["the result has more than 1 rows"]
    released = check_and_run(sandbox, "SELECT code, count(*) AS n FROM events GROUP BY 1", ALLOWED)
    assert released.status == "released"
    assert "__contributors" not in released.columns
    assert all("__contributors" not in row for row in released.rows)
