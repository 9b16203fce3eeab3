"""The same linkage model on Spark: scored there, it decides as DuckDB does.

Splink writes the model's SQL for either engine. A model trained (without labels) on a tiny
area scores the area's hospital records on a local Spark session (bound to this machine only)
and on DuckDB, and every record gets the same person and band. Training on Spark, and figures
at scale, are in benchmarks/bench_linkage.py (``--engine spark``).
"""

from __future__ import annotations

import pytest
from linkage_world import make_area

from confide.pseudonymiser.linkage import records, scoring
from confide.pseudonymiser.linkage.engines import SparkEngine
from confide.pseudonymiser.linkage.evaluate import link_tables
from confide.tre.spark_session import local_session


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    return local_session(tmp_path_factory.mktemp("linkage-spark"), threads=2, memory="1g")


def test_spark_and_duckdb_link_every_record_to_the_same_person(spark) -> None:
    area = make_area(400, seed=59)
    linked = link_tables(area.hospital, area.people)
    mine = records.prepare(area.hospital, "patient_id")
    theirs = records.prepare(area.people, "patient_id")
    engine = SparkEngine(spark)
    try:
        pairs = scoring.score(engine, linked.trained, mine, theirs)
    finally:
        engine.close()
    on_spark = scoring.decide(mine, pairs).to_pylist()
    on_duckdb = linked.decisions.to_pylist()
    assert [d["record_id"] for d in on_spark] == [d["record_id"] for d in on_duckdb]
    assert sum(d["band"] == "link" for d in on_duckdb) > 0.9 * area.hospital.num_rows
    for s, d in zip(on_spark, on_duckdb, strict=True):
        assert (s["person_id"], s["band"]) == (d["person_id"], d["band"])
        assert s["probability"] == pytest.approx(d["probability"], abs=1e-6)


def test_linkage_leaves_nothing_behind_in_a_shared_session(spark) -> None:
    area = make_area(150, seed=61)
    linked = link_tables(area.hospital, area.people)
    before = {t.name for t in spark.catalog.listTables() if t.isTemporary}
    engine = SparkEngine(spark)
    try:
        mine = records.prepare(area.hospital, "patient_id")
        scoring.score(engine, linked.trained, mine, records.prepare(area.people, "patient_id"))
    finally:
        engine.close()
    assert {t.name for t in spark.catalog.listTables() if t.isTemporary} == before
