"""Project views on Spark: the same views :func:`confide.tre.views.build_views` makes on DuckDB.

Each view has the approved columns plus ``patient_id``, only rows inside the approved date
window, no rows of excluded people, and no rows whose person has no ``patients`` row.
``patient_id`` is HMAC-SHA256(project key, hub pseudonym), first 128 bits in hex, built from
``sha2``/``unhex`` and binary concatenation exactly as DuckDB builds it: the per-person SQL
comes from :mod:`confide.tre.dialects`, shared with the DuckDB builder.

As on DuckDB, the people table (hub pseudonym → project pseudonym and the approved
``patients`` columns, without excluded people) is built first, here once per query and cached
in Spark's memory, so the keyed hash and the choice of each person's patients row run once
however many views the query reads; every other view is its table's rows inside the window
joined to it. The SQL is written once, in DuckDB's dialect like every other record-store
query, and rendered in Spark's. The key never appears in SQL text: its HMAC pads are a
one-row table. Only the project views stay visible to the session: the raw tables, the key
and the exclusions are dropped before any query runs, and the people table never has a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from confide.access.model import ProjectGrant
from confide.hub.records import RECORD_SCHEMAS, RecordStore
from confide.tre.dialects import SPARK, hmac_pads, quote, window_filter, window_literals
from confide.tre.guard import PATIENT_COLUMN
from confide.tre.views import EXCLUDED, RAW, approved_columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KEYS = "__keys"
PATIENT_SOURCES = f"{RAW}patient_sources"

# The pads of the project key's HMAC and of the record-key secret's, as columns of KEYS.
_PSEUDONYM = SPARK.pseudonym_hex("k.outer_pad", "k.inner_pad", "r.pseudonym")
_RECORD_HMAC = SPARK.hmac_hex("k.record_outer", "k.record_inner", "r.pseudonym")


@dataclass
class SparkViews:
    """What :func:`build_spark_views` made: each view's Arrow schema (the column types DuckDB's
    views have) and the cached people table, freed by :meth:`release`."""

    schemas: dict[str, pa.Schema]
    people: DataFrame

    def release(self) -> None:
        """Free the cached people table (call once the query is done)."""
        self.people.unpersist()


RECORD_KEYS = "__record_keys"


def view_schemas(grant: ProjectGrant) -> dict[str, pa.Schema]:
    """The Arrow schema of each project view: ``patient_id`` then the approved columns."""
    return {
        table: pa.schema(
            [
                pa.field(PATIENT_COLUMN, pa.string()),
                *(RECORD_SCHEMAS[table].field(column) for column in cols),
            ]
        )
        for table, cols in approved_columns(grant).items()
    }


def people_sql(patient_columns: list[str]) -> str:
    """The DuckDB-dialect people table: everyone with a ``patients`` row, not excluded, with
    the HMAC their hidden record keys come from (``__h``)."""
    extra = "".join(f", r.{quote(column)}" for column in patient_columns)
    return (
        f"SELECT r.pseudonym, {_PSEUDONYM} AS {PATIENT_COLUMN}{extra}, {_RECORD_HMAC} AS __h "
        f"FROM {RAW}patients AS r "
        f"CROSS JOIN {KEYS} AS k ANTI JOIN {EXCLUDED} AS x ON x.pseudonym = r.pseudonym"
    )


def rows_sql(table: str, columns: list[str], start: date, end: date) -> str:
    """The DuckDB-dialect rows of one raw table inside the window, with the hub pseudonym."""
    selected = ", ".join(["t.pseudonym", *(f"t.{quote(column)}" for column in columns)])
    where = window_filter(table, window_literals(start, end))
    return f"SELECT {selected} FROM {RAW}{table} AS t{where}"


def build_spark_views(
    session: SparkSession,
    records: RecordStore,
    grant: ProjectGrant,
    excluded_pseudonyms: pa.Array,
    project_key: bytes,
    *,
    catalog: dict[str, Any] | None = None,
    record_key: bytes | None = None,
) -> SparkViews:
    """Create the project's views as temporary views of ``session``. Give each query its own
    ``spark.newSession()`` (temporary views belong to one session) and call ``release`` on
    the result when done. ``catalog``: the record-store snapshot to read (the one the
    exclusions were computed for); ``record_key``: the TRE's record-key secret (people's
    hidden keys for the system's aggregation, shown as ``__record_keys``)."""
    from pyspark import StorageLevel

    if len(project_key) < 16:
        raise ValueError("a project key must be at least 16 bytes")
    columns = approved_columns(grant)
    catalog = catalog if catalog is not None else records.catalog()
    internal = [PATIENT_SOURCES, f"{RAW}patients", KEYS, EXCLUDED]
    _raw(session, records, catalog, "patients").createOrReplaceTempView(PATIENT_SOURCES)
    session.sql(SPARK.patients(PATIENT_SOURCES)).createOrReplaceTempView(f"{RAW}patients")
    for table in columns:
        if table != "patients":
            _raw(session, records, catalog, table).createOrReplaceTempView(f"{RAW}{table}")
            internal.append(f"{RAW}{table}")
    outer, inner = hmac_pads(project_key)
    record_outer, record_inner = hmac_pads(record_key or project_key)
    keys = pa.table(
        {
            "outer_pad": [outer],
            "inner_pad": [inner],
            "record_outer": [record_outer],
            "record_inner": [record_inner],
        }
    )
    session.createDataFrame(keys).createOrReplaceTempView(KEYS)
    excluded = pa.table({"pseudonym": pa.array(excluded_pseudonyms, pa.string())})
    session.createDataFrame(excluded).createOrReplaceTempView(EXCLUDED)
    people = _sql(session, people_sql(columns.get("patients", []))).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        # People are joined as a DataFrame, never registered under a name: dropping a view
        # would also drop its cached data.
        keyed = people.select("pseudonym", PATIENT_COLUMN)
        record_keys = people.selectExpr(PATIENT_COLUMN, *SPARK.record_keys("__h"))
        record_keys.createOrReplaceTempView(RECORD_KEYS)
        for table, cols in columns.items():
            if table == "patients":
                view = people.select(PATIENT_COLUMN, *cols)
            else:
                rows = _sql(session, rows_sql(table, cols, grant.window_start, grant.window_end))
                view = rows.join(keyed, on="pseudonym").select(PATIENT_COLUMN, *cols)
            view.createOrReplaceTempView(table)
    except BaseException:
        people.unpersist()
        raise
    finally:
        for name in internal:
            session.catalog.dropTempView(name)
    return SparkViews(schemas=view_schemas(grant), people=people)


def _raw(
    session: SparkSession, records: RecordStore, catalog: dict[str, Any], table: str
) -> DataFrame:
    from pyspark.sql.pandas.types import from_arrow_schema

    files = records.files(table, catalog)
    if not files:
        return session.createDataFrame(RECORD_SCHEMAS[table].empty_table())
    # The store's schema is known, so Spark need not open files to infer it.
    schema = from_arrow_schema(RECORD_SCHEMAS[table])
    return session.read.schema(schema).parquet(*(str(path) for path in files))


def _sql(session: SparkSession, duckdb_sql: str) -> DataFrame:
    return session.sql(SPARK.render(duckdb_sql))
