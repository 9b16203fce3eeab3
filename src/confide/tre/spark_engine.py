"""Runs a query's aggregation on Spark over the project's views, within time and size bounds.

DuckDB is the TRE's default engine and its reference: the aggregation is planned once
(:mod:`confide.tre.aggregation`) and written in Spark's dialect, with the population's own
Spark text; its cells come back as the same columns, so output checking cannot tell the
engines apart.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from confide.access.model import ProjectGrant
from confide.common.errors import InvalidInput
from confide.hub.records import RecordStore
from confide.tre.aggregation import KEYED, AggregationPlan
from confide.tre.cellkey import BUCKETS
from confide.tre.runner import EngineResult, Limits, QueryLimitExceeded
from confide.tre.spark_views import RECORD_KEYS, SparkViews, build_spark_views

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


class SparkQueryFailed(Exception):
    """Spark could not run the query. Not a refusal reason shown as is: whether an engine
    fails may depend on the data, so the query service reports one generic refusal and keeps
    this (the kind of error only) for operators."""


class JoinRefused(InvalidInput):
    """The query's Spark plan joins rows without an equality condition (decided from the
    plan alone, before any data is read)."""


def aggregate_on_spark(
    spark: SparkSession,
    records: RecordStore,
    grant: ProjectGrant,
    excluded: pa.Array,
    project_key: bytes,
    record_key: bytes,
    plan: AggregationPlan,
    limits: Limits | None = None,
    *,
    catalog: dict[str, Any] | None = None,
    sketches: bool = True,
) -> EngineResult:
    """Build the project's views on Spark and run a query's aggregation (Spark's own SQL from
    the same plan): what :func:`runner.run_aggregation` returns on DuckDB for the same plan.

    The session runs with ANSI mode off, so a value that cannot be cast or divided gives NULL
    for that row rather than failing the query (see :mod:`confide.tre.totality`). Raises
    ``QueryLimitExceeded`` past the time or size bounds and ``SparkQueryFailed`` when Spark
    reports an error."""
    from py4j.protocol import Py4JError
    from pyspark import StorageLevel
    from pyspark.errors import PySparkException

    _quiet_spark_errors()
    limits = limits or Limits()
    session = spark.newSession()
    session.conf.set("spark.sql.runSQLOnFiles", "false")
    session.conf.set("spark.sql.ansi.enabled", "false")
    context = spark.sparkContext
    tag = f"confide-query-{uuid.uuid4().hex}"
    context.addJobTag(tag)
    context.setInterruptOnCancel(True)  # also interrupt tasks waiting on input when cancelled
    watchdog = _Watchdog(lambda: context.cancelJobsWithTag(tag), limits.seconds)
    views: SparkViews | None = None
    keyed: DataFrame | None = None
    try:
        views = build_spark_views(
            session, records, grant, excluded, project_key, catalog=catalog, record_key=record_key
        )
        keyed = session.sql(plan.keyed)
        refuse_nested_loops(keyed)
        keyed = keyed.persist(StorageLevel.MEMORY_AND_DISK)
        keyed.createOrReplaceTempView(KEYED)
        cells = _collect(session, plan.cells, limits.max_rows, limits, watchdog)
        sketch_rows = None
        if sketches and plan.sketches:
            sketch_rows = _collect(
                session, plan.sketches, limits.max_rows * BUCKETS, limits, watchdog
            )
        return EngineResult(cells, sketch_rows)
    except (PySparkException, Py4JError) as error:
        if watchdog.late.is_set():
            raise _too_long(limits) from None
        raise SparkQueryFailed(
            f"the query failed while running on Spark ({_kind(error)}); check types and casts"
        ) from None
    finally:
        watchdog.stop()
        context.removeJobTag(tag)
        session.catalog.dropTempView(KEYED)
        if keyed is not None:
            keyed.unpersist()
        if views is not None:
            views.release()
            for name in [*views.schemas, RECORD_KEYS]:
                session.catalog.dropTempView(name)


def _collect(
    session: SparkSession, sql: str, max_rows: int, limits: Limits, watchdog: _Watchdog
) -> pa.Table:
    table = session.sql(sql).limit(max_rows + 1).toArrow()
    if watchdog.late.is_set():
        raise _too_long(limits)
    if table.num_rows > max_rows:
        raise QueryLimitExceeded(
            f"the result has more than {limits.max_rows} cells; group by fewer or coarser "
            "dimensions"
        )
    return table


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
            raise JoinRefused(
                "the query joins rows without an equality condition (every row with every "
                "row), which the Spark engine does not run; join on patient_id or another "
                "column with ="
            )
        for group in (node.children(), node.subqueries()):
            pending.extend(group.apply(i) for i in range(group.size()))


def _too_long(limits: Limits) -> QueryLimitExceeded:
    return QueryLimitExceeded(
        f"the query ran for more than {limits.seconds:g} seconds and was stopped"
    )


def _kind(error: Exception) -> str:
    """The error's class or condition name, never its message (which may quote values)."""
    condition = getattr(error, "getCondition", None)
    name = condition() if callable(condition) else None
    return str(name or type(error).__name__)[:60]
