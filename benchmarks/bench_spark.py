"""The cohort queries on DuckDB and on Spark over the same record store, in the same run.

Both engines get the same grant, exclusions, keys and aggregation plan (each in its own
dialect), build the project's views and run the plan; output checking is the same code for
both and is left out. DuckDB is the service's own path: a fresh connection,
``views.build_views`` (the project's cohort is built on the first run and reused after, as in
the service), ``lock_down``, ``run_aggregation``. Spark is ``spark_engine.aggregate_on_spark``
on one local session started once (its start-up is timed on its own); it builds the views,
keyed hashes included, on every run. Each query's cells are checked to be identical on both
engines before timing.

    python benchmarks/bench_spark.py [--patients 20000] [--repeats 3] [--threads 2]
                                     [--memory 2g] [--home DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_queries import QUERIES, built_home, median
from common import print_rows, save

from confide.access.seed import PEOPLE, seed_demo
from confide.embedded import embedded_tre
from confide.tre import views as project_views
from confide.tre.aggregation import plan_aggregation
from confide.tre.exclusions import OUTPUT_FORMS
from confide.tre.guard import check_query
from confide.tre.person_level import check_person_level
from confide.tre.runner import Limits, lock_down, run_aggregation
from confide.tre.spark_engine import aggregate_on_spark
from confide.tre.spark_session import local_session
from confide.tre.translate import read_query


def on_duckdb(tre: Any, job: dict[str, Any], limits: Limits) -> pa.Table:
    con = duckdb.connect()
    try:
        views = project_views.build_views(
            con,
            tre.service.records,
            job["grant"],
            job["exclusions"].pseudonyms,
            job["key"],
            cohorts=tre.service.store.cohorts,
            cache=tre.service.store.mapping_cache,
            catalog=job["catalog"],
            exclusions_digest=job["exclusions"].digest,
            record_key=job["record_key"],
        )
        lock_down(con, limits, views.readable)
        return run_aggregation(con, job["plans"]["duckdb"], limits, sketches=True)[0]
    finally:
        con.close()


def on_spark(spark: Any, tre: Any, job: dict[str, Any], limits: Limits) -> pa.Table:
    return aggregate_on_spark(
        spark,
        tre.service.records,
        job["grant"],
        job["exclusions"].pseudonyms,
        job["key"],
        job["record_key"],
        job["plans"]["spark"],
        limits,
        catalog=job["catalog"],
    )[0]


def prepare(tre: Any, query: Any) -> dict[str, Any]:
    """What both engines are given: the grant, exclusions now, the keys and the plans."""
    org, _, email, _ = PEOPLE[query.who]
    grant = tre.access.authorise_query(tre.access.principal_for(org, email), query.project)
    allowed = project_views.view_columns(grant)
    definition = read_query(query.sql, allowed, query.bounds)
    population = check_person_level(check_query(definition.population, allowed))
    catalog = tre.service.records.catalog()
    exclusions = tre.service.exclusions.excluded(
        grant, OUTPUT_FORMS["rounding"], int(catalog["version"])
    )
    return {
        "grant": grant,
        "plans": {
            dialect: plan_aggregation(population, definition, dialect=dialect)
            for dialect in ("duckdb", "spark")
        },
        "record_key": tre.service.store.record_key_secret(),
        "catalog": catalog,
        "exclusions": exclusions,
        "key": tre.service.store.project_key(grant.project_id),
    }


def same(a: pa.Table, b: pa.Table) -> bool:
    def rows(table: pa.Table) -> list[tuple[Any, ...]]:
        cells = [
            tuple(round(float(v), 6) if isinstance(v, int | float) else v for v in row.values())
            for row in table.to_pylist()
        ]
        return sorted(cells, key=repr)

    return a.column_names == b.column_names and rows(a) == rows(b)


def bench(size: int, repeats: int, threads: int, memory: str, keep: Path | None) -> dict:
    work = keep / str(size) if keep else Path(tempfile.mkdtemp(prefix="confide-bench-spark-"))
    try:
        home = built_home(work, size)
        limits = Limits(seconds=600, threads=threads)
        started = time.perf_counter()
        spark = local_session(work / "spark", threads=threads, memory=memory)
        startup = time.perf_counter() - started
        rows: dict[str, Any] = {"patients": size, "spark_startup_s": startup}
        table = [("Spark session start", f"{startup * 1000:,.0f} ms", "once per process")]
        try:
            with embedded_tre(home) as tre:
                seed_demo(tre.access)
                for name, query in QUERIES.items():
                    job = prepare(tre, query)
                    first = on_spark(spark, tre, job, limits)  # warm both; compare results
                    assert same(first, on_duckdb(tre, job, limits)), name
                    duck = median(lambda: on_duckdb(tre, job, limits), repeats)  # noqa: B023
                    sparked = median(lambda: on_spark(spark, tre, job, limits), repeats)  # noqa: B023
                    ratio = sparked / duck
                    rows[name] = {"duckdb_s": duck, "spark_s": sparked, "ratio": ratio}
                    table.append(
                        (
                            name,
                            f"{sparked * 1000:,.0f} ms",
                            f"DuckDB {duck * 1000:,.0f} ms; Spark/DuckDB {ratio:,.1f}×",
                        )
                    )
        finally:
            spark.stop()
        title = f"Cohort queries, {size:,} patients, Spark local[{threads}] (median of {repeats})"
        print_rows(title, table)
        return rows
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="Spark local threads")
    parser.add_argument("--memory", default="2g", help="Spark driver memory, e.g. 2g")
    parser.add_argument("--home", type=Path, help="keep and reuse built installations here")
    args = parser.parse_args()
    result = bench(args.patients, args.repeats, args.threads, args.memory, args.home)
    print(f"\nSaved {save('spark', {f'patients_{args.patients}': result})}")


if __name__ == "__main__":
    main()
