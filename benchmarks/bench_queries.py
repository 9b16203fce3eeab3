"""Standard cohort queries with consent filtering and output checking, beside the same SQL run
directly on the raw tables in the same run.

The privacy path is the whole service: authorise, ask the choices registry who is excluded
now, build the project's views (exclusions, date window, columns, per-project pseudonyms),
check and rewrite the SQL, run it locked down, check every cell, store the outcome, link the
release's contributor commitments and append to the ledger. Warm runs reuse the project's
cohort; the first query after a choice change (new membership files) and the first of a new
cohort (after an ingest) are timed separately. The raw path runs the researcher's
SQL on the record store's tables with ``pseudonym`` renamed to ``patient_id``: nothing else.

    python benchmarks/bench_queries.py [--patients 100000] [--patients 1000000] [--repeats 5]
                                       [--home DIR]

``--home DIR`` keeps the built installation in ``DIR/<patients>`` and reuses it on later runs
(building a 1M-patient store takes minutes; the queries are what is measured).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import run_pipeline
from common import print_rows, save

from confide.access.seed import PEOPLE, seed_demo
from confide.common.home import Home
from confide.embedded import embedded_tre
from confide.hub.records import TABLES, RecordStore
from confide.synth import generate

HBA1C = "1049301000000100"


@dataclass(frozen=True)
class CohortQuery:
    """One of the documented researcher examples: who runs it, its SQL and its bounds."""

    project: str
    who: str
    sql: str
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)


QUERIES: dict[str, CohortQuery] = {
    "prevalence by age band and sex": CohortQuery(
        "demo-research",
        "researcher",
        "SELECT CASE WHEN 2024 - p.birth_year < 40 THEN '0-39' "
        "WHEN 2024 - p.birth_year < 65 THEN '40-64' ELSE '65+' END AS age_band, p.sex, "
        "count(DISTINCT p.patient_id) AS patients "
        "FROM patients p JOIN events e ON e.patient_id = p.patient_id "
        "WHERE e.code = '44054006' GROUP BY 1, 2",
    ),
    "counts by practice": CohortQuery(
        "demo-planning",
        "planner",
        "SELECT r.practice, count(DISTINCT r.patient_id) AS patients FROM registrations r "
        "GROUP BY r.practice",
    ),
    "medication after diagnosis": CohortQuery(
        "demo-research",
        "researcher",
        "WITH dx AS (SELECT patient_id, min(date) AS dx_date FROM events "
        "WHERE code = '44054006' GROUP BY patient_id), "
        "rx AS (SELECT patient_id, min(date) AS rx_date FROM medications "
        "WHERE code = '39720311000001101' OR code LIKE '3%' GROUP BY patient_id) "
        "SELECT p.sex, count(DISTINCT dx.patient_id) AS patients, "
        "avg(date_diff('day', dx.dx_date, rx.rx_date)) AS mean_days "
        "FROM dx JOIN rx ON rx.patient_id = dx.patient_id "
        "JOIN patients p ON p.patient_id = dx.patient_id "
        "WHERE rx.rx_date BETWEEN dx.dx_date AND dx.dx_date + INTERVAL 90 DAY GROUP BY p.sex",
        {"mean_days": (0.0, 90.0)},
    ),
    "mean HbA1c by age band": CohortQuery(
        "demo-research",
        "researcher",
        "SELECT CASE WHEN 2024 - p.birth_year < 40 THEN '0-39' "
        "WHEN 2024 - p.birth_year < 65 THEN '40-64' ELSE '65+' END AS age_band, "
        "count(DISTINCT p.patient_id) AS patients, avg(e.value) AS mean_hba1c "
        "FROM patients p JOIN events e ON e.patient_id = p.patient_id "
        f"WHERE e.code = '{HBA1C}' GROUP BY 1",
        {"mean_hba1c": (20.0, 150.0)},
    ),
}


def raw_connection(records: RecordStore) -> duckdb.DuckDBPyConnection:
    """The record store's tables as they are, with ``pseudonym`` called ``patient_id``."""
    con = duckdb.connect()
    records.attach(con, prefix="raw_")
    for name in TABLES:
        con.execute(
            f"CREATE VIEW {name} AS SELECT * EXCLUDE (pseudonym), pseudonym AS patient_id "
            f"FROM raw_{name}"
        )
    return con


def run(tre, principal, query: CohortQuery) -> object:  # type: ignore[no-untyped-def]
    """The whole service path for one query (every check, the store and the ledger)."""
    return tre.service.run(principal, query.project, query.sql, bounds=query.bounds)


def cold_run(tre, principal, query: CohortQuery) -> None:  # type: ignore[no-untyped-def]
    """One query that must build its cohort, as the first after an ingest does (the mapping
    of the store version is kept here; an ingest would rebuild that too)."""
    shutil.rmtree(tre.tre_store.cohorts, ignore_errors=True)
    run(tre, principal, query)


def new_choices_run(tre, principal, query: CohortQuery) -> None:  # type: ignore[no-untyped-def]
    """One query after a choice changed who is excluded: it makes new membership files."""
    for members in tre.tre_store.cohorts.glob("*/*/members"):
        shutil.rmtree(members, ignore_errors=True)
    run(tre, principal, query)


def median(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def built_home(work: Path, size: int) -> Home:
    """An installation with ``size`` synthetic patients ingested, built once per folder."""
    done = work / "built"
    home = Home.at(work / "home")
    if not done.exists():
        area = work / "area"
        generate(area, patients=size, seed=1, fmt="csv")
        run_pipeline(area, home)
        shutil.rmtree(area, ignore_errors=True)
        done.touch()
    return home


def bench(size: int, repeats: int, keep: Path | None = None) -> dict[str, object]:
    work = keep / str(size) if keep else Path(tempfile.mkdtemp(prefix="confide-bench-queries-"))
    try:
        home = built_home(work, size)
        rows: dict[str, object] = {"patients": size}
        table = []
        with embedded_tre(home) as tre:
            seed_demo(tre.access)
            raw = raw_connection(RecordStore(home.party("hub") / "records"))
            for name, query in QUERIES.items():
                org, _, email, _ = PEOPLE[query.who]
                principal = tre.access.principal_for(org, email)
                outcome = run(tre, principal, query)
                assert outcome.status == "released", (name, outcome.reason)  # type: ignore[attr-defined]
                private = median(lambda: run(tre, principal, query), repeats)  # noqa: B023
                direct = median(lambda: raw.execute(query.sql).fetchall(), repeats)  # noqa: B023
                cold = median(lambda: cold_run(tre, principal, query), repeats)  # noqa: B023
                chose = median(lambda: new_choices_run(tre, principal, query), repeats)  # noqa: B023
                ratio = private / direct
                rows[name] = {
                    "private_s": private,
                    "raw_s": direct,
                    "overhead": ratio - 1,
                    "after_choice_change_s": chose,
                    "new_cohort_s": cold,
                }
                table.append(
                    (
                        name,
                        f"{private * 1000:,.0f} ms",
                        f"raw {direct * 1000:,.0f} ms; privacy {(ratio - 1) * 100:+,.0f}%; "
                        f"after a choice change {chose * 1000:,.0f} ms; "
                        f"first of a new cohort {cold * 1000:,.0f} ms",
                    )
                )
        print_rows(f"Cohort queries, {size:,} patients (median of {repeats})", table)
        return rows
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def perturbation_cost(cells: int = 2000, repeats: int = 5) -> dict[str, float]:
    """What protecting a table costs per cell (thresholds, dominance, spread, the cell-key
    perturbation), beside the bare loop over the same cells in the same run."""
    from confide.tre.aggregation import plan_aggregation
    from confide.tre.disclosure import protect
    from confide.tre.guard import check_query
    from confide.tre.person_level import check_person_level
    from confide.tre.rules import RULE_SETS
    from confide.tre.translate import read_query

    allowed = {"events": {"patient_id", "code", "value"}}
    definition = read_query(
        "SELECT e.code, count(DISTINCT e.patient_id) AS n, avg(e.value) AS m FROM events e "
        "GROUP BY e.code",
        allowed,
        {"m": (0.0, 100.0)},
    )
    population = check_person_level(check_query(definition.population, allowed))
    plan = plan_aggregation(population, definition, dialect="duckdb")
    rows = [
        {"__level": 1, "__d0": f"c{i}", "__n": 50 + i % 200, "__k": i * 7919,
         "__n1": 50 + i % 200, "__k1": i * 7919, "__s1": 2500.0 + i, "__a1": 2500.0 + i,
         "__t1_1": 90.0, "__t2_1": 89.0, "__ss1": 150000.0 + 50 * i, "__lo1": 1.0,
         "__hi1": 90.0, "__nlo1": 1, "__nhi1": 1}
        for i in range(cells)
    ]  # fmt: skip
    rules = RULE_SETS["acro"]
    checked = median(lambda: protect(plan, rows, rules), repeats)
    bare = median(lambda: [dict(r) for r in rows], repeats)
    return {
        "cells": cells,
        "per_cell_us": checked / cells * 1e6,
        "bare_per_cell_us": bare / cells * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, action="append")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--home", type=Path, help="keep and reuse built installations here")
    args = parser.parse_args()
    sizes = args.patients or [100_000]
    results: dict[str, object] = {f"patients_{n}": bench(n, args.repeats, args.home) for n in sizes}
    cost = perturbation_cost()
    results["perturbation"] = cost
    print_rows(
        "Output checking per cell (2,000 cells, 2 measures)",
        [("checks and cell-key perturbation", f"{cost['per_cell_us']:.1f} µs",
          f"copying the cell alone {cost['bare_per_cell_us']:.2f} µs")],
    )  # fmt: skip
    print(f"\nSaved {save('queries', results)}")


if __name__ == "__main__":
    main()
