"""A project's views without a whole installation, for the TRE's pipeline tests.

Tables of people, events and medications already carrying project pseudonyms (``patient_id``),
with each person's hidden record keys derived exactly as the view builders derive them
(:func:`confide.tre.cellkey.record_keys`), on DuckDB or on Spark. :func:`answer` runs a query
through the same steps the query service does (read the definition, prove the population
person-level, plan the aggregation, run it, protect every cell, sketch the contributor sets):
what a researcher would see, minus the store and the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from confide.common.errors import InvalidInput
from confide.tre.aggregation import KEYED, RECORD_KEYS, plan_aggregation
from confide.tre.cellkey import BUCKET_COLUMNS, record_keys
from confide.tre.differencing import CellSketch, find_overlaps
from confide.tre.disclosure import ProtectedOutput, protect
from confide.tre.guard import check_query
from confide.tre.model import QueryDefinition
from confide.tre.person_level import check_person_level
from confide.tre.rules import RULE_SETS, RuleSet
from confide.tre.runner import Limits, lock_down, run_aggregation
from confide.tre.sketching import released_sketches
from confide.tre.translate import read_query

SECRET = b"sandbox-record-key-secret-000000"
ALLOWED: dict[str, set[str]] = {
    "patients": {"patient_id", "birth_year", "sex", "area"},
    "events": {"patient_id", "code", "date", "value"},
    "medications": {"patient_id", "code", "date", "quantity"},
}
SANDBOX_SCHEMAS = {
    "patients": pa.schema(
        [("patient_id", pa.string()), ("birth_year", pa.int16()), ("sex", pa.string()),
         ("area", pa.string())]
    ),
    "events": pa.schema(
        [("patient_id", pa.string()), ("code", pa.string()), ("date", pa.date32()),
         ("value", pa.float64())]
    ),
    "medications": pa.schema(
        [("patient_id", pa.string()), ("code", pa.string()), ("date", pa.date32()),
         ("quantity", pa.float64())]
    ),
}  # fmt: skip


@dataclass
class Population:
    """Rows of the three views."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    medications: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> dict[str, pa.Table]:
        return {
            name: pa.Table.from_pylist(getattr(self, name), schema=schema)
            for name, schema in SANDBOX_SCHEMAS.items()
        }

    def record_keys(self) -> pa.Table:
        rows = []
        for person in self.patients:
            keys = record_keys(SECRET, person["patient_id"])
            rows.append(
                {"patient_id": person["patient_id"], "__rkey": keys.rkey, "__sid": keys.sid,
                 "__chk": keys.chk, **dict(zip(BUCKET_COLUMNS, keys.buckets, strict=True))}
            )  # fmt: skip
        return pa.Table.from_pylist(
            rows,
            schema=pa.schema(
                [("patient_id", pa.string()), *((name, pa.int64()) for name in
                 ("__rkey", "__sid", "__chk", *BUCKET_COLUMNS))]
            ),
        )  # fmt: skip

    def without(self, patient_id: str) -> Population:
        return Population(
            [r for r in self.patients if r["patient_id"] != patient_id],
            [r for r in self.events if r["patient_id"] != patient_id],
            [r for r in self.medications if r["patient_id"] != patient_id],
        )


@dataclass
class Answer:
    """What a researcher sees of one query (``rows``) and what the checks saw."""

    status: str  # released | held_for_review | refused
    reason: str | None = None
    output: ProtectedOutput | None = None
    sketches: list[CellSketch] = field(default_factory=list)
    definition: QueryDefinition | None = None

    @property
    def rows(self) -> list[dict[str, Any]] | None:
        return self.output.rows if self.output is not None and self.status == "released" else None

    def visible(self) -> tuple[str, Any]:
        """What the researcher can see: the status and, once released, the rows."""
        return (self.status, self.rows)


def duckdb_views(population: Population) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, table in population.tables().items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")
    con.register("keys_arrow", population.record_keys())
    con.execute(f"CREATE TABLE {RECORD_KEYS} AS SELECT * FROM keys_arrow")
    con.unregister("keys_arrow")
    lock_down(con, Limits(memory="512MB", threads=1))
    return con


def spark_views(spark: Any, population: Population) -> Any:
    session = spark.newSession()
    session.conf.set("spark.sql.ansi.enabled", "false")
    session.conf.set("spark.sql.runSQLOnFiles", "false")
    for name, table in population.tables().items():
        session.createDataFrame(table).createOrReplaceTempView(name)
    session.createDataFrame(population.record_keys()).createOrReplaceTempView(RECORD_KEYS)
    return session


def answer(
    population: Population,
    query: str | Mapping[str, Any],
    *,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    totals: bool = False,
    rules: str | RuleSet = "acro",
    engine: str = "duckdb",
    spark: Any = None,
    earlier: Sequence[CellSketch] = (),
) -> Answer:
    """One query through the pipeline, as the query service runs it (without the store)."""
    chosen = RULE_SETS[rules] if isinstance(rules, str) else rules
    try:
        definition = read_query(query, ALLOWED, bounds, totals=totals)
        person_level = check_person_level(check_query(definition.population, ALLOWED))
        plan = plan_aggregation(
            person_level, definition, dialect=engine, quantile_window=chosen.threshold
        )
        if engine == "duckdb":
            con = duckdb_views(population)
            cells, sketch_rows = run_aggregation(con, plan, Limits(), sketches=True)
            con.close()
        else:
            session = spark_views(spark, population)
            session.sql(plan.keyed).createOrReplaceTempView(KEYED)
            cells = session.sql(plan.cells).toArrow()
            sketch_rows = session.sql(plan.sketches).toArrow() if plan.sketches else None
    except InvalidInput as refusal:
        return Answer("refused", refusal.message)
    return _protected(plan, definition, person_level, cells, sketch_rows, chosen, earlier)


def _protected(
    plan: Any,
    definition: QueryDefinition,
    population: Any,
    cells: pa.Table,
    sketch_rows: pa.Table | None,
    chosen: RuleSet,
    earlier: Sequence[CellSketch],
) -> Answer:
    output = protect(plan, cells.to_pylist(), chosen)
    rows = sketch_rows.to_pylist() if sketch_rows is not None else []
    sketches = released_sketches(definition, population, plan, output, rows)
    overlaps = find_overlaps(sketches, earlier, chosen.threshold)
    if overlaps:
        reason = "; ".join(o.describe() for o in overlaps)
        return Answer("held_for_review", reason, output, sketches, definition)
    return Answer("released", None, output, sketches, definition)


def person(pid: str, birth_year: int, sex: str, area: str) -> dict[str, Any]:
    return {"patient_id": pid, "birth_year": birth_year, "sex": sex, "area": area}


def event(pid: str, code: str, when: date, value: float | None = None) -> dict[str, Any]:
    return {"patient_id": pid, "code": code, "date": when, "value": value}
