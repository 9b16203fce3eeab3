"""Differential privacy, for projects whose approver chose it: noise from OpenDP over the same
system-written cells, 95% intervals, each person bounded to the project's number of cells, a
budget that is accounted and enforced, and the differencing that DP bounds."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest
from tre_world import BY_SEX, HBA1C, TreWorld, build

from confide.tre.aggregation import plan_aggregation
from confide.tre.dp import DpOptions, release_dp
from confide.tre.guard import check_query
from confide.tre.person_level import check_person_level
from confide.tre.translate import read_query

ALLOWED = {"patients": {"patient_id", "sex", "birth_year"}, "events": {"patient_id", "code"}}
PROJECT = "demo-commercial"  # the demo project whose approver chose differential privacy


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-dp"), practices=2, patients=60, seed=5)
    yield made
    made.close()


def _plan(sql: str, contributions: int = 1):  # type: ignore[no-untyped-def]
    definition = read_query(sql, ALLOWED)
    population = check_person_level(check_query(definition.population, ALLOWED))
    return plan_aggregation(population, definition, dialect="duckdb", contributions=contributions)


@pytest.mark.parametrize(
    ("query", "totals", "why"),
    [
        ("SELECT sex, median(birth_year) AS m FROM patients GROUP BY sex", False, "quantile"),
        (BY_SEX, True, "totals are not available"),
    ],
)
def test_what_dp_cannot_bound_is_refused_with_the_reason(
    tre: TreWorld, query: str, totals: bool, why: str
) -> None:
    outcome = tre.service.run(
        tre.principal("commercial"), PROJECT, query, totals=totals, epsilon=0.1,
        bounds={"m": (1900.0, 2020.0)} if "median" in query else None,
    )  # fmt: skip
    assert outcome.status == "refused" and why in outcome.reason
    assert tre.service.budget(tre.principal("commercial"), PROJECT)["epsilon_spent"] == 0


def test_released_numbers_carry_95_percent_intervals(tre: TreWorld) -> None:
    outcome = tre.service.run(
        tre.principal("commercial"),
        PROJECT,
        "SELECT count(DISTINCT p.patient_id) AS n, avg(2024 - p.birth_year) AS mean_age "
        "FROM patients p",
        epsilon=1.0,
        bounds={"mean_age": (0.0, 110.0)},
    )
    assert outcome.status == "released", outcome.reason
    row, interval = outcome.result["rows"][0], outcome.result["intervals"][0]
    low, high = interval["n"]
    assert low <= row["n"] <= high and 2 < high - low < 40
    low, high = interval["mean_age"]
    assert 0 <= low <= row["mean_age"] <= high <= 110
    size = tre.ledger.head().size
    kinds = [e.kind for e in tre.ledger.decoded(size - 3, size)]
    assert kinds == ["query_run", "output_checked", "release"]
    checked, release = tre.ledger.decoded(size - 2, size)
    assert checked.body["method"] == "dp_laplace" and checked.body["epsilon"] == 1.0
    assert release.body["data_form"] == "dp"


def test_each_person_counts_in_at_most_the_projects_cells(tre: TreWorld) -> None:
    """People have several events each; grouped by code, each is kept in one cell only (the
    project's bound), so the cells add up to about the number of people, not of events."""
    sql = "SELECT e.code, count(DISTINCT e.patient_id) AS n FROM events e GROUP BY e.code"
    plan = _plan(sql, contributions=1)
    con = tre.world.hub.records.connect()
    people = con.execute("SELECT count(DISTINCT pseudonym) FROM events").fetchone()[0]
    rows_per_person = con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT pseudonym, code FROM events)"
    ).fetchone()[0]
    assert rows_per_person > people * 1.3  # people do have several codes
    assert "QUALIFY ROW_NUMBER() OVER (PARTITION BY __pid" in plan.keyed
    outcome = tre.service.run(tre.principal("commercial"), PROJECT, sql, epsilon=1.0)
    assert outcome.status == "released", outcome.reason
    total = sum(r["n"] for r in outcome.result["rows"])
    assert abs(total - people) < 0.2 * people + 20


def test_declared_keys_are_all_released_and_data_keys_pass_a_noisy_threshold() -> None:
    declared = _plan(
        {  # type: ignore[arg-type]
            "population": "SELECT patient_id, sex FROM patients",
            "dimensions": [{"column": "sex", "domain": ["female", "male", "x"]}],
            "measures": [{"kind": "count", "name": "n"}],
        }
    )
    out = release_dp(declared, [{"__d0": "female", "__n": 40}], DpOptions(epsilon=1.0))
    assert [r["sex"] for r in out.rows] == ["female", "male", "x", "other"]
    assert out.threshold is None
    seen = _plan("SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex")
    cells = [{"__d0": "female", "__n": 400}, {"__d0": "lonely", "__n": 1}]
    shown = [release_dp(seen, cells, DpOptions(epsilon=1.0)) for _ in range(200)]
    assert all(out.threshold and out.threshold > 5 for out in shown)
    assert sum(any(r["sex"] == "lonely" for r in out.rows) for out in shown) <= 2
    assert all(any(r["sex"] == "female" for r in out.rows) for out in shown)


def test_the_budget_is_accounted_shown_and_enforced(tmp_path: Path) -> None:
    tre = build(tmp_path, practices=1, patients=30)
    try:
        buyer = tre.principal("commercial")
        assert tre.service.budget(buyer, PROJECT)["epsilon_left"] == 3.0
        spent = [tre.service.run(buyer, PROJECT, BY_SEX, epsilon=1.0) for _ in range(3)]
        assert [o.status for o in spent] == ["released"] * 3
        assert [o.budget_left for o in spent] == pytest.approx([2.0, 1.0, 0.0])
        refused = tre.service.run(buyer, PROJECT, BY_SEX, epsilon=0.1)
        assert refused.status == "refused" and "budget is exhausted" in refused.reason
        assert tre.service.budget(buyer, PROJECT)["epsilon_spent"] == 3.0
    finally:
        tre.close()


def test_differencing_two_populations_is_bounded_by_the_noise() -> None:
    """Two counts whose people differ by one: the difference of the released figures is
    Laplace noise whose spread is set by epsilon, whoever the person is, and the budget stops
    the noise being averaged away."""
    plan = _plan("SELECT count(DISTINCT patient_id) AS n FROM patients")
    options = DpOptions(epsilon=0.5)
    differences = [
        release_dp(plan, [{"__n": 118}], options).rows[0]["n"]
        - release_dp(plan, [{"__n": 117}], options).rows[0]["n"]
        for _ in range(500)
    ]
    expected_sd = 2 * (1 / 0.5)  # two Laplace(b) draws, b = 1 / epsilon
    assert abs(statistics.mean(differences) - 1) < 0.6
    assert 0.8 * expected_sd < statistics.pstdev(differences) < 1.25 * expected_sd
    above = sum(d > 0 for d in differences) / len(differences)
    assert above < 0.5 * np.exp(0.5) + 0.08  # no better than the DP bound allows


def test_a_sum_and_a_mean_use_the_declared_bounds(tre: TreWorld) -> None:
    with pytest.raises(Exception, match="needs bounds"):
        read_query(
            f"SELECT avg(e.value) AS m FROM events e WHERE e.code = '{HBA1C}'",
            {"events": {"patient_id", "code", "value"}},
        )
