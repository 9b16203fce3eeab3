"""Runs a checked query on Spark over the project's views, within time and result-size bounds.

DuckDB is the TRE's default engine and its reference: the plan's SQL is written in DuckDB's
dialect, transpiled to Spark's, and the result comes back with exactly the column names and
Arrow types DuckDB gives for the same SQL (read from DuckDB itself, over empty views of the
same schemas), so output checking cannot tell the engines apart.

Each run gets its own ``spark.newSession()`` (temporary views are per session), with Spark's
file queries (parquet.`path`) switched off and only the project's views visible. Spark jobs
are tagged per run; once ``limits.seconds`` pass, the run's jobs are cancelled, again and again
until it ends, so a job started after the deadline is stopped too. The JVM's memory and
threads are fixed when the session starts (:func:`spark_session.local_session`), so
``limits.memory`` and ``limits.threads`` do not apply per query here.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa

from confide.access.model import ProjectGrant
from confide.common.errors import InvalidInput
from confide.hub.records import RecordStore
from confide.tre.guard import transpile
from confide.tre.runner import Limits, QueryLimitExceeded, lock_down
from confide.tre.spark_views import SparkViews, build_spark_views

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class _QuietSparkErrors(logging.Filter):
    """pyspark logs every SQL error with its full message, which may quote a data value; the
    engine reports failures itself (by kind only), so those log lines are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_QUIET = _QuietSparkErrors()
_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def _quiet_spark_errors() -> None:
    from pyspark.logger import PySparkLogger

    for name in _ERROR_LOGGERS:
        logger = PySparkLogger.getLogger(name)  # pyspark's own logger class, as it expects
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


class SparkQueryFailed(InvalidInput):
    """Spark could not run the query; the message names the kind of error only."""


class _HasSql(Protocol):
    sql: str


def run_on_spark(
    spark: SparkSession,
    records: RecordStore,
    grant: ProjectGrant,
    excluded: pa.Array,
    project_key: bytes,
    plan: _HasSql,
    limits: Limits | None = None,
    *,
    catalog: dict[str, Any] | None = None,
) -> pa.Table:
    """Build the project's views on Spark and run ``plan.sql`` (a CountingPlan or DpPlan).

    Returns what :func:`runner.run_checked` returns for the same plan on DuckDB's views.
    ``catalog``: the record-store snapshot to read (as for :func:`views.build_views`).
    Raises ``QueryLimitExceeded`` past the time or size bounds and ``SparkQueryFailed`` when
    Spark reports an error."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    _quiet_spark_errors()
    limits = limits or Limits()
    session = spark.newSession()
    session.conf.set("spark.sql.runSQLOnFiles", "false")
    context = spark.sparkContext
    tag = f"confide-query-{uuid.uuid4().hex}"
    context.addJobTag(tag)
    context.setInterruptOnCancel(True)  # also interrupt tasks waiting on input when cancelled
    watchdog = _Watchdog(lambda: context.cancelJobsWithTag(tag), limits.seconds)
    views: SparkViews | None = None
    try:
        views = build_spark_views(session, records, grant, excluded, project_key, catalog=catalog)
        frame = session.sql(transpile(plan.sql, "spark"))
        refuse_nested_loops(frame)
        expected = reference_schema(plan.sql, views.schemas)
        if watchdog.late.is_set():
            raise _too_long(limits)
        table = frame.limit(limits.max_rows + 1).toArrow()
        if watchdog.late.is_set():
            raise _too_long(limits)
        _check_size(table, limits)
        return conform(table, expected)
    except (PySparkException, Py4JError) as error:
        if watchdog.late.is_set():
            raise _too_long(limits) from None
        raise SparkQueryFailed(
            f"the query failed while running on Spark ({_kind(error)}); check types and casts"
        ) from None
    finally:
        watchdog.stop()
        context.removeJobTag(tag)
        if views is not None:
            views.release()
            for name in views.schemas:
                session.catalog.dropTempView(name)


class _Watchdog:
    """Calls ``cancel`` once ``seconds`` have passed, then again every ``every`` seconds until
    stopped: a job that starts after the deadline (or misses one cancellation) is cancelled
    too."""

    def __init__(self, cancel: Callable[[], None], seconds: float, every: float = 0.25) -> None:
        self.late = threading.Event()
        self._done = threading.Event()
        self._cancel = cancel
        self._every = every
        self._thread = threading.Thread(target=self._watch, args=(seconds,), daemon=True)
        self._thread.start()

    def _watch(self, seconds: float) -> None:
        if self._done.wait(seconds):
            return
        self.late.set()
        while not self._done.is_set():
            self._cancel()
            self._done.wait(self._every)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


# Joins with no equality condition: every row meets every row, inside one task that Spark
# cannot stop part-way (cancelling only stops tasks between input batches).
NESTED_LOOP_JOINS = frozenset({"BroadcastNestedLoopJoin", "CartesianProduct"})


def refuse_nested_loops(frame: DataFrame) -> None:
    """Refuse a query whose Spark plan joins without an equality condition.

    The project's cached people table is a leaf of the plan, so its own one-row key join is
    not counted."""
    pending = [frame._jdf.queryExecution().sparkPlan()]
    while pending:
        node = pending.pop()
        if node.nodeName() in NESTED_LOOP_JOINS:
            raise SparkQueryFailed(
                "the query joins rows without an equality condition (every row with every "
                "row), which the Spark engine does not run; join on patient_id or another "
                "column with ="
            )
        for group in (node.children(), node.subqueries()):
            pending.extend(group.apply(i) for i in range(group.size()))


def reference_schema(sql: str, schemas: Mapping[str, pa.Schema]) -> pa.Schema:
    """The column names and types DuckDB gives ``sql`` over views with these schemas."""
    con = duckdb.connect()
    try:
        for name, schema in schemas.items():
            con.register(name, schema.empty_table())
        lock_down(con, Limits(threads=1, memory="256MB"))
        return con.sql(sql).to_arrow_table().schema
    except duckdb.Error as error:
        kind = type(error).__name__
        raise SparkQueryFailed(f"the reference engine could not type the result ({kind})") from None
    finally:
        con.close()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s names and types (safe casts only: no silent overflow)."""
    if table.num_columns != len(schema):
        raise SparkQueryFailed(
            f"Spark returned {table.num_columns} columns where DuckDB returns {len(schema)}"
        )
    try:
        return table.rename_columns(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        types = ", ".join(f"{f.name}: {f.type}" for f in table.schema)
        raise SparkQueryFailed(
            f"Spark's result types ({types}) do not convert to DuckDB's ({schema.types})"
        ) from None


def _check_size(table: pa.Table, limits: Limits) -> None:
    if table.num_rows > limits.max_rows:
        raise QueryLimitExceeded(f"the result has more than {limits.max_rows} rows")
    if table.num_rows * table.num_columns > limits.max_cells:
        raise QueryLimitExceeded(f"the result has more than {limits.max_cells} cells")


def _too_long(limits: Limits) -> QueryLimitExceeded:
    return QueryLimitExceeded(
        f"the query ran for more than {limits.seconds:g} seconds and was stopped"
    )


def _kind(error: Exception) -> str:
    """The error's class or condition name, never its message (which may quote values)."""
    condition = getattr(error, "getCondition", None)
    name = condition() if callable(condition) else None
    return str(name or type(error).__name__)[:60]
