"""Where the model's SQL runs: DuckDB in one process, Spark at national scale.

Splink writes every step (blocking, comparison vectors, EM, scoring) as SQL for the engine it
is given, so the model, its training and its scoring are the same code on both; only the
engine object differs. An engine is used for one job (one training or one scoring) and
closed: the tables it registers live only as long as it does.
"""

from __future__ import annotations

import tempfile
import uuid
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Engine(Protocol):
    name: str
    dialect: str  # Splink's name for the SQL it speaks

    def register(self, table: pa.Table, name: str) -> Any:
        """Hand ``table`` to Splink as the input called ``name``."""

    def close(self) -> None: ...


class DuckDBEngine:
    """An in-memory DuckDB, separate from the pseudonymiser's own database (Splink's working
    tables never land in the person index)."""

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, threads: int = 2) -> None:
        from splink import DuckDBAPI

        self._con = duckdb.connect()
        self._con.execute(f"SET threads TO {int(threads)}")
        self._con.execute("SET preserve_insertion_order = false")
        self.api = DuckDBAPI(connection=self._con)

    def register(self, table: pa.Table, name: str) -> Any:
        return self.api.register(table, dataset_display_name=name)

    def close(self) -> None:
        self._con.close()


class SparkEngine:
    """Splink on a Spark session the caller owns (local for tests, a cluster at scale).

    Splink's fuzzy string functions (Damerau-Levenshtein, Jaro-Winkler) are Java UDFs shipped
    in a jar with Splink: it is added to the session here, so any session will do."""

    name = "spark"
    dialect = "spark"

    def __init__(self, spark: SparkSession) -> None:
        from splink.backends.spark import SparkAPI, similarity_jar_location

        self.spark = spark
        context = spark.sparkContext
        jar = similarity_jar_location()
        if jar not in context.getConf().get("spark.jars", ""):
            spark.sql(f"ADD JAR '{jar}'")
        if context.getCheckpointDir() is None:  # Splink writes intermediate tables there
            scratch = context.getConf().get("spark.local.dir", tempfile.gettempdir())
            context.setCheckpointDir(tempfile.mkdtemp(prefix="linkage-", dir=scratch))
        self.api = SparkAPI(spark_session=spark, break_lineage_method="parquet")
        self._views_before = self._temporary_views()

    def _temporary_views(self) -> set[str]:
        return {t.name for t in self.spark.catalog.listTables() if t.isTemporary}

    def register(self, table: pa.Table, name: str) -> Any:
        # Spark's temporary views outlive this engine: each job's tables get names of their own.
        frame = self.spark.createDataFrame(table)
        unique = f"{name}_{uuid.uuid4().hex[:12]}"
        return self.api.register(frame, dataset_display_name=name, table_name=unique)

    def close(self) -> None:
        """Drop every view this job made: the session is shared (the TRE's queries must see
        only their own project views)."""
        self.api.delete_tables_created_by_splink_from_db()
        for name in self._temporary_views() - self._views_before:
            self.spark.catalog.dropTempView(name)
