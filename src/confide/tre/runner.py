"""Runs a query's aggregation on DuckDB within bounds of time, memory, threads and size.

The guard is the first line; the connection is the second: it is locked down before the query
runs (no file or network access except the view files, configuration locked), so a query the
guard wrongly let through still cannot read files, load extensions or change settings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa

from confide.common.errors import InvalidInput
from confide.tre.aggregation import KEYED, AggregationPlan
from confide.tre.cellkey import BUCKETS


class QueryLimitExceeded(InvalidInput):
    """The query ran but went past one of the project's limits."""


@dataclass(frozen=True)
class Limits:
    """Bounds for one query run."""

    seconds: float = 30.0
    memory: str = "1GB"
    threads: int = 2
    max_rows: int = 10_000
    max_cells: int = 200_000
    running_per_project: int = 2  # queries of one project running at once
    running_overall: int = 4  # queries running at once in this TRE


class EngineResult(NamedTuple):
    """What an engine returns for a query's aggregation: the cell figures and, when asked
    for, the contributor sketch rows."""

    cells: pa.Table
    sketch_rows: pa.Table | None


def lock_down(
    con: duckdb.DuckDBPyConnection, limits: Limits, readable: Iterable[Path | str] = ()
) -> None:
    """Make ``con`` a sandbox: only ``readable`` files, bounded memory/threads, locked config.

    Call after the project's views are created and before any researcher query runs; the
    connection cannot be unlocked afterwards, so give each project run its own connection."""
    paths = [os.fspath(path) for path in readable]
    if paths:
        listing = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
        con.execute(f"SET allowed_paths = [{listing}]")
    con.execute(f"SET memory_limit = '{_safe_memory(limits.memory)}'")
    con.execute(f"SET threads = {int(limits.threads)}")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allow_community_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _safe_memory(memory: str) -> str:
    text = memory.strip().upper().replace(" ", "")
    if not text[:-2].isdigit() or text[-2:] not in ("MB", "GB"):
        raise InvalidInput(f"memory limit {memory!r} must look like '512MB' or '2GB'")
    return text


def run_aggregation(
    con: duckdb.DuckDBPyConnection, plan: AggregationPlan, limits: Limits, *, sketches: bool
) -> EngineResult:
    """Run a query's aggregation on a locked-down ``con``: the per-person cells once (a
    temporary table), then the cell figures and, for disclosure control, the contributor
    sketches. Stops after ``limits.seconds`` and refuses more cells than ``limits.max_rows``
    (counted while fetching, so a huge result is never held in memory)."""
    timer = threading.Timer(limits.seconds, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {KEYED} AS {plan.keyed}")
        cells = _fetch(con, plan.cells, limits.max_rows, limits)
        sketch_rows = (
            _fetch(con, plan.sketches, limits.max_rows * BUCKETS, limits)
            if sketches and plan.sketches
            else None
        )
        con.execute(f"DROP TABLE IF EXISTS {KEYED}")
        return EngineResult(cells, sketch_rows)
    except duckdb.InterruptException:
        raise QueryLimitExceeded(
            f"the query ran for more than {limits.seconds:g} seconds and was stopped"
        ) from None
    except duckdb.OutOfMemoryException:
        raise QueryLimitExceeded(
            f"the query needed more than {limits.memory} of memory and was stopped"
        ) from None
    except duckdb.PermissionException:
        raise QueryLimitExceeded("the query tried to reach outside the project's views") from None
    finally:
        timer.cancel()


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, max_rows: int, limits: Limits) -> pa.Table:
    reader = con.sql(sql).to_arrow_reader(min(max_rows + 1, 8192))
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        if rows > max_rows:
            raise QueryLimitExceeded(
                f"the result has more than {limits.max_rows} cells; group by fewer or coarser "
                "dimensions"
            )
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=reader.schema)
