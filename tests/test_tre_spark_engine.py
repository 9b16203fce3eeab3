"""The Spark engine on a small real installation gives exactly what the DuckDB path gives.

Practices → pseudonymiser → hub build the record store; people's choices exclude some of them.
For the same grant, exclusions, project key, record-key secret and query, the aggregation's
cells and contributor sketches come back from Spark (``spark_engine.aggregate_on_spark``) the
same as from ``views.build_views`` + ``runner.run_aggregation``, before any protection. The
views are also checked on their own: exclusions, the date window, the per-project pseudonyms
against the reference HMAC, and people's record keys against the reference derivation. Then
the engine's bounds and its sandbox: time limit, result size, only the project's views
visible, no file queries, a failure that names no value, and a JVM on loopback only.
"""

from __future__ import annotations

import math
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tre_world import TreWorld, build

from confide.access.model import LegalBasis, ProjectGrant, Purpose, RecipientKind
from confide.access.seed import PEOPLE
from confide.tre.aggregation import AggregationPlan, plan_aggregation
from confide.tre.cellkey import BUCKET_COLUMNS, record_keys
from confide.tre.exclusions import OUTPUT_FORMS
from confide.tre.guard import check_query
from confide.tre.person_level import check_person_level
from confide.tre.runner import Limits, QueryLimitExceeded, lock_down, run_aggregation
from confide.tre.spark_engine import (
    JoinRefused,
    SparkQueryFailed,
    _Watchdog,
    aggregate_on_spark,
)
from confide.tre.spark_session import SparkUnavailable, find_java_home, java_version
from confide.tre.spark_views import RECORD_KEYS, build_spark_views
from confide.tre.translate import read_query
from confide.tre.views import build_views, project_pseudonym, view_columns

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_queries import QUERIES

WINDOW = (date(2015, 1, 1), date(2018, 12, 31))
ALL_TABLES = {
    "patients": ("birth_year", "sex", "area", "source"),
    "registrations": ("practice", "start_date", "end_date"),
    "events": ("code", "date", "value"),
    "medications": ("code", "date", "quantity"),
    "hospital_episodes": ("admission_date", "diagnoses"),
    "deaths": ("date_of_death",),
}


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-spark"), practices=2, patients=40, seed=23)
    for i in range(0, 30, 4):  # out of research: the research queries must leave them out
        made.registry.set(made.numbers[i], {"no_research": True}, "online")
    for i in range(1, 30, 6):  # out of planning
        made.registry.set(made.numbers[i], {"no_planning": True}, "online")
    yield made
    made.close()


SECRET = b"spark-test-record-key-secret-000"


def _plan(grant: ProjectGrant, query: Any, dialect: str, bounds: Any = None) -> AggregationPlan:
    allowed = view_columns(grant)
    definition = read_query(query, allowed, bounds)
    population = check_person_level(check_query(definition.population, allowed))
    return plan_aggregation(population, definition, dialect=dialect)


def _duckdb(tre: TreWorld, grant: ProjectGrant, excluded: pa.Array, key: bytes, query: Any,
            folder: Path, bounds: Any = None) -> tuple[pa.Table, pa.Table | None]:  # fmt: skip
    con = duckdb.connect()
    try:
        views = build_views(
            con, tre.world.hub.records, grant, excluded, key, cohorts=folder / "cohorts",
            record_key=SECRET,
        )  # fmt: skip
        lock_down(con, Limits(), views.readable)
        return run_aggregation(con, _plan(grant, query, "duckdb", bounds), Limits(), sketches=True)
    finally:
        con.close()


def _spark(tre: TreWorld, spark: Any, grant: ProjectGrant, excluded: pa.Array, key: bytes,
           query: Any, bounds: Any = None, limits: Any = None) -> tuple[pa.Table, Any]:  # fmt: skip
    return aggregate_on_spark(
        spark, tre.world.hub.records, grant, excluded, key, SECRET,
        _plan(grant, query, "spark", bounds), limits or Limits(),
    )  # fmt: skip


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    rows = [tuple(_plain(v) for v in row.values()) for row in table.to_pylist()]
    return sorted(rows, key=repr)


def _plain(value: Any) -> Any:
    """Numbers as floats (engines type sums differently), everything else as it is."""
    if isinstance(value, bool) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _assert_same(got: pa.Table, expected: pa.Table) -> None:
    assert got.column_names == expected.column_names
    a_rows, b_rows = _rows(got), _rows(expected)
    assert b_rows and len(a_rows) == len(b_rows)
    for a, b in zip(a_rows, b_rows, strict=True):
        assert all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) if isinstance(x, float) else x == y
            for x, y in zip(a, b, strict=True)
        ), (a, b)


def _demo(tre: TreWorld, project: str, who: str) -> tuple[ProjectGrant, pa.Array, bytes]:
    org, _, email, _ = PEOPLE[who]
    grant = tre.access.authorise_query(tre.access.principal_for(org, email), project)
    form = OUTPUT_FORMS["rounding"]
    excluded = tre.service.exclusions.excluded(grant, form).pseudonyms
    return grant, excluded, tre.store.project_key(grant.project_id)


# -- parity --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_cohort_queries_match_the_duckdb_path(
    name: str, tre: TreWorld, spark, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    query = QUERIES[name]
    grant, excluded, key = _demo(tre, query.project, query.who)
    assert len(excluded) > 0  # choices leave people out of both demo projects
    cells, sketches = _duckdb(tre, grant, excluded, key, query.sql, tmp_path, query.bounds)
    got_cells, got_sketches = _spark(tre, spark, grant, excluded, key, query.sql, query.bounds)
    _assert_same(got_cells, cells)
    _assert_same(got_sketches, sketches)


def test_definitions_with_bands_domains_quantiles_and_totals_match(
    tre: TreWorld, spark, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    grant, excluded, key = _demo(tre, "demo-research", "researcher")
    definition = {
        "population": "SELECT p.patient_id, p.birth_year, p.sex, e.code, e.value "
        "FROM patients p JOIN events e ON e.patient_id = p.patient_id",
        "dimensions": [
            {"column": "birth_year", "bands": [1950, 1980]},
            {"column": "sex", "domain": ["female"]},
        ],
        "measures": [
            {"kind": "count", "name": "n"},
            {"kind": "quantile", "name": "q", "column": "value", "bounds": [0, 100], "q": 0.5},
            {"kind": "sum", "name": "s", "column": "value", "bounds": [0, 100]},
        ],
        "totals": True,
    }
    cells, sketches = _duckdb(tre, grant, excluded, key, definition, tmp_path)
    got_cells, got_sketches = _spark(tre, spark, grant, excluded, key, definition)
    _assert_same(got_cells, cells)
    _assert_same(got_sketches, sketches)


def test_record_keys_match_the_reference_on_both_engines(
    tre: TreWorld, spark, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    grant, excluded, key = _demo(tre, "demo-research", "researcher")
    records = tre.world.hub.records
    hubs = [
        h
        for h in tre.world.pseudonymiser.pseudonyms_for(tre.numbers)
        if h not in set(excluded.to_pylist())
    ]
    expected = {project_pseudonym(key, hub): record_keys(SECRET, hub) for hub in hubs}
    con = duckdb.connect()
    build_views(con, records, grant, excluded, key, cohorts=tmp_path / "c", record_key=SECRET)
    duck = con.sql(f"SELECT * FROM {RECORD_KEYS}").to_arrow_table().to_pylist()
    con.close()
    session = spark.newSession()
    views = build_spark_views(session, records, grant, excluded, key, record_key=SECRET)
    on_spark = session.table(RECORD_KEYS).toArrow().to_pylist()
    views.release()
    for rows in (duck, on_spark):
        assert len(rows) == len(expected)
        for row in rows:
            reference = expected[row["patient_id"]]
            assert (row["__rkey"], row["__sid"], row["__chk"]) == (
                reference.rkey,
                reference.sid,
                reference.chk,
            )
            assert tuple(row[b] for b in BUCKET_COLUMNS) == reference.buckets


def test_the_views_match_duckdb_and_apply_choices_window_and_pseudonyms(
    tre: TreWorld, spark, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    records = tre.world.hub.records
    hubs = tre.world.pseudonymiser.pseudonyms_for(tre.numbers)
    excluded = pa.array(hubs[:7], pa.string())
    key = uuid.uuid4().bytes * 5  # 80 bytes: longer than a block, so hashed first
    grant = ProjectGrant(
        project_id=uuid.uuid4().hex,
        slug="spark-views",
        organisation="org",
        purpose=Purpose("research"),
        recipient_kind=RecipientKind("academic"),
        legal_basis=LegalBasis("public_task"),
        tables=ALL_TABLES,
        window_start=WINDOW[0],
        window_end=WINDOW[1],
        expires_on=date(2030, 1, 1),
    )
    session = spark.newSession()
    views = build_spark_views(session, records, grant, excluded, key)
    schemas = views.schemas
    assert sorted(schemas) == sorted(ALL_TABLES)
    visible = {t.name for t in session.catalog.listTables()}
    assert visible == {*ALL_TABLES, RECORD_KEYS}  # nothing else (the keys: see their test)
    con = duckdb.connect()
    build_views(con, records, grant, excluded, key, cohorts=tmp_path / "cohorts")
    seen: dict[str, pa.Table] = {}
    for table, schema in schemas.items():
        got = session.table(table).toArrow().cast(schema)
        expected = con.sql(f"SELECT * FROM {table}").to_arrow_table()
        assert got.schema == expected.schema
        assert _rows(got) == _rows(expected), table
        seen[table] = got
    con.close()
    views.release()
    included = {project_pseudonym(key, hub) for hub in hubs[7:]}
    assert set(seen["patients"].column("patient_id").to_pylist()) == included
    assert set(seen["events"].column("patient_id").to_pylist()) <= included
    dates = seen["events"].column("date").to_pylist()
    assert dates and all(WINDOW[0] <= d <= WINDOW[1] for d in dates)
    raw = pq.read_table(records.files("events")).column("date").to_pylist()
    assert any(not WINDOW[0] <= d <= WINDOW[1] for d in raw)  # the window did remove rows


# -- bounds and sandbox --------------------------------------------------------------------


def test_a_query_past_its_time_is_stopped_and_the_session_lives_on(tre: TreWorld, spark) -> None:  # type: ignore[no-untyped-def]
    query = QUERIES["medication after diagnosis"]
    grant, excluded, key = _demo(tre, query.project, query.who)
    with pytest.raises(QueryLimitExceeded, match=r"more than 0\.05 seconds"):
        _spark(tre, spark, grant, excluded, key, query.sql, query.bounds, Limits(seconds=0.05))
    small = "SELECT count(DISTINCT patient_id) AS n FROM patients"
    assert _spark(tre, spark, grant, excluded, key, small)[0].num_rows == 1
    # Each run's cached tables are freed when it ends, stopped or not.
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_the_watchdog_cancels_from_the_deadline_until_stopped() -> None:
    calls: list[float] = []
    watchdog = _Watchdog(lambda: calls.append(time.monotonic()), seconds=0.1, every=0.02)
    time.sleep(0.3)
    watchdog.stop()
    assert watchdog.late.is_set() and len(calls) >= 3  # again and again: late jobs too
    settled = len(calls)
    time.sleep(0.05)
    assert len(calls) == settled
    quiet = _Watchdog(lambda: calls.append(0.0), seconds=5)
    quiet.stop()
    assert not quiet.late.is_set() and len(calls) == settled


def test_joins_without_equality_are_refused_before_they_run(tre: TreWorld, spark) -> None:  # type: ignore[no-untyped-def]
    # Spark cannot stop such a join part-way through a task, so it never starts one. The
    # population check refuses these before any engine sees them; this is the engine's own
    # second line, on a plan the check never made.
    grant, excluded, key = _demo(tre, "demo-research", "researcher")
    plan = _plan(
        grant, "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex", "spark"
    )
    crossed = AggregationPlan(
        keyed=plan.keyed.replace("JOIN __record_keys AS k ON k.patient_id = c.__pid",
                                 "JOIN __record_keys AS k ON k.patient_id < c.__pid"),
        cells=plan.cells, sketches=plan.sketches, dimensions=plan.dimensions,
        measures=plan.measures, levels=plan.levels,
    )  # fmt: skip
    assert crossed.keyed != plan.keyed
    started = time.monotonic()
    with pytest.raises(JoinRefused, match="without an equality condition"):
        aggregate_on_spark(spark, tre.world.hub.records, grant, excluded, key, SECRET, crossed)
    assert time.monotonic() - started < 20


def test_results_past_the_row_bound_are_refused(tre: TreWorld, spark) -> None:  # type: ignore[no-untyped-def]
    grant, excluded, key = _demo(tre, "demo-research", "researcher")
    sql = "SELECT code, count(DISTINCT patient_id) AS n FROM events GROUP BY code"
    with pytest.raises(QueryLimitExceeded, match="more than 2 cells"):
        _spark(tre, spark, grant, excluded, key, sql, limits=Limits(max_rows=2))


@pytest.mark.parametrize(
    "relation",
    [
        "__people",  # every internal name is dropped (see the views test)
        "registrations",  # not approved for demo-research
        'parquet."{file}"',  # Spark's file query, parquet.`path`
    ],
)
def test_only_the_project_views_are_visible_even_past_the_guard(
    relation: str, tre: TreWorld, spark
) -> None:  # type: ignore[no-untyped-def]
    grant, excluded, key = _demo(tre, "demo-research", "researcher")
    records = tre.world.hub.records
    file = records.files("events")[0]
    plan = _plan(
        grant, "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex", "spark"
    )
    sneaky = AggregationPlan(
        keyed=plan.keyed.replace('FROM `patients` AS `patients`',
                                 f"FROM {relation.format(file=file)} AS `patients`"),
        cells=plan.cells, sketches=plan.sketches, dimensions=plan.dimensions,
        measures=plan.measures, levels=plan.levels,
    )  # fmt: skip
    assert sneaky.keyed != plan.keyed
    with pytest.raises(SparkQueryFailed) as refused:
        aggregate_on_spark(spark, records, grant, excluded, key, SECRET, sneaky)
    assert str(file) not in str(refused.value)
    assert not spark.catalog.listTables()  # the caller's own session saw nothing


def test_a_failure_names_its_kind_but_no_value(tre: TreWorld, spark) -> None:  # type: ignore[no-untyped-def]
    grant, excluded, key = _demo(tre, "demo-research", "researcher")
    plan = _plan(
        grant, "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex", "spark"
    )
    broken = AggregationPlan(
        keyed=plan.keyed.replace("__s1.`sex`", "assert_true(__s1.`sex` = 'nobody')"),
        cells=plan.cells, sketches=plan.sketches, dimensions=plan.dimensions,
        measures=plan.measures, levels=plan.levels,
    )  # fmt: skip
    assert broken.keyed != plan.keyed
    with pytest.raises(SparkQueryFailed) as failed:
        aggregate_on_spark(spark, tre.world.hub.records, grant, excluded, key, SECRET, broken)
    message = str(failed.value)
    assert "male" not in message and "nobody" not in message


def _listening_addresses(pid: int) -> list[str]:
    """Local addresses of the TCP sockets ``pid`` listens on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1].split(":")[0])
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_the_jvm_listens_on_loopback_only(spark) -> None:  # type: ignore[no-untyped-def]
    children = []
    for task in Path("/proc/self/task").iterdir():
        children += (task / "children").read_text().split()
    jvms = [
        int(pid)
        for pid in children
        if b"org.apache.spark" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert jvms, "the Spark JVM is not a child of this process"
    addresses = [a for pid in jvms for a in _listening_addresses(pid)]
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    assert addresses and set(addresses) <= loopback, addresses
    assert spark.conf.get("spark.ui.enabled") == "false"


# -- finding Java (no JVM needed) ------------------------------------------------------------


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    (home / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    return home


def test_java_homes_are_recognised_by_their_release_file(tmp_path: Path) -> None:
    assert java_version(_fake_jdk(tmp_path, "a", "17.0.15")) == 17
    assert java_version(_fake_jdk(tmp_path, "b", "1.8.0_402")) == 8
    assert java_version(tmp_path / "missing") is None


def test_a_supported_jdk_is_found_when_java_home_is_unsuitable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from confide.tre import spark_session

    old = _fake_jdk(tmp_path / "jvm", "java-11", "11.0.2")
    _fake_jdk(tmp_path / "jvm", "java-17", "17.0.1")
    _fake_jdk(tmp_path / "jvm", "java-21", "21.0.3")
    _fake_jdk(tmp_path / "jvm", "java-25", "25")
    monkeypatch.setattr(spark_session, "_JDK_FOLDERS", (str(tmp_path / "jvm"),))
    monkeypatch.setattr(spark_session.shutil, "which", lambda name: None)  # no java on PATH
    monkeypatch.setenv("JAVA_HOME", str(old))
    assert find_java_home() == tmp_path / "jvm" / "java-21"
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jvm" / "java-17"))
    assert find_java_home() is None  # already fine: nothing to change
    on_path = _fake_jdk(tmp_path / "path", "jdk", "17.0.9")
    monkeypatch.setattr(spark_session.shutil, "which", lambda name: str(on_path / "bin" / name))
    monkeypatch.setenv("JAVA_HOME", str(old))
    assert find_java_home() == on_path.resolve()  # the java on PATH, over a wrong JAVA_HOME
    monkeypatch.delenv("JAVA_HOME")
    assert find_java_home() is None  # the java on PATH is used as it is
    monkeypatch.setattr(spark_session.shutil, "which", lambda name: None)
    monkeypatch.setattr(spark_session, "_JDK_FOLDERS", (str(tmp_path / "none"),))
    monkeypatch.setenv("JAVA_HOME", str(old))
    with pytest.raises(SparkUnavailable, match="Java 17 or 21"):
        find_java_home()


def test_the_query_service_releases_the_same_output_on_either_engine(tre: TreWorld, spark) -> None:
    from confide.tre.wiring import query_service

    on_spark = query_service(
        tre.home,
        access=tre.access,
        registry=tre.registry,
        pseudonymiser=tre.world.pseudonymiser,
        records=tre.world.hub.records,
        ledger=tre.ledger,
        store=tre.store,
        engine="spark",
    )
    on_spark._spark_session = spark  # the test worker's JVM (the service starts one otherwise)
    for query in QUERIES.values():
        principal = tre.principal(query.who)
        duck = tre.service.run(principal, query.project, query.sql, bounds=query.bounds)
        other = on_spark.run(principal, query.project, query.sql, bounds=query.bounds)
        assert duck.status == "released", duck.reason
        assert other.status == "released", other.reason  # the same cells: no differencing
        assert _released(duck.result) == _released(other.result)  # rows in any order
    on_spark._spark_session = None  # the fixture stops it


def test_an_unknown_engine_is_refused(tre: TreWorld) -> None:
    from confide.common.errors import InvalidInput
    from confide.tre.wiring import query_service

    with pytest.raises(InvalidInput, match="Unknown engine"):
        query_service(
            tre.home,
            access=tre.access,
            registry=tre.registry,
            pseudonymiser=tre.world.pseudonymiser,
            records=tre.world.hub.records,
            ledger=tre.ledger,
            store=tre.store,
            engine="oracle",
        )


def _released(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Each released row with the labels on its cells, independent of row order."""
    labels: dict[int, list] = {}
    for label in result["labels"]:
        labels.setdefault(label["row"], []).append((label["column"], label["action"]))
    return sorted(
        (repr(sorted(row.items())), repr(sorted(labels.get(i, []))))
        for i, row in enumerate(result["rows"])
    )
