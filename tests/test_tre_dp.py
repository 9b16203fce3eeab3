"""Differential privacy: noise with OpenDP, 95% intervals, a budget that is accounted, shown
and enforced, and the differencing attack that rounding leaks and DP bounds."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from tre_world import HBA1C, TreWorld, build

from confide.tre.dp import DpOptions, plan_dp, release_dp
from confide.tre.guard import QueryRefused, check_query

ALLOWED = {
    "patients": {"patient_id", "sex", "birth_year"},
    "events": {"patient_id", "code", "value"},
}
BY_SEX = "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.sex"


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-dp"), practices=2, patients=60, seed=5)
    yield made
    made.close()


def _plan(sql: str, **options):  # type: ignore[no-untyped-def]
    opts = DpOptions(epsilon=1.0, **options)
    return plan_dp(check_query(sql, ALLOWED), ALLOWED, opts), opts


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT sex, count(*) AS n FROM patients GROUP BY sex", "counts are of people"),
        ("SELECT sex, sum(birth_year) AS s FROM patients GROUP BY sex", "bounds"),
        ("SELECT sex, max(birth_year) AS m FROM patients GROUP BY sex", "DP|differentially"),
        (BY_SEX + " HAVING count(DISTINCT p.patient_id) > 5", "HAVING"),
        ("SELECT sex FROM patients", "row-level"),
    ],
)
def test_unsupported_dp_queries_are_refused_with_the_reason(sql: str, why: str) -> None:
    with pytest.raises(QueryRefused, match=why):
        _plan(sql)


def test_released_numbers_carry_95_percent_intervals(tre: TreWorld) -> None:
    outcome = tre.service.run(
        tre.principal("researcher"),
        "demo-research",
        "SELECT count(DISTINCT e.patient_id) AS n, avg(e.value) AS mean_hba1c FROM events e "
        f"WHERE e.code = '{HBA1C}'",
        mode="dp",
        epsilon=1.0,
        bounds={"mean_hba1c": (20.0, 120.0)},
    )
    assert outcome.status == "released", outcome.reason
    row, interval = outcome.result["rows"][0], outcome.result["intervals"][0]
    low, high = interval["n"]
    assert low <= row["n"] <= high and 2 < high - low < 20  # Laplace(2/1), 95%: +-6
    low, high = interval["mean_hba1c"]
    assert 20 <= low <= row["mean_hba1c"] <= high <= 120
    assert 30 <= row["mean_hba1c"] <= 90 or high - low > 20
    assert outcome.budget_left == pytest.approx(2.0)
    size = tre.ledger.head().size
    run, checked, release = tre.ledger.decoded(size - 3, size)
    assert (
        run.kind == "query_run" and run.body["mode"] == "dp" and "avg(e.value)" in run.body["sql"]
    )
    assert checked.kind == "output_checked" and checked.body["method"] == "dp_laplace"
    assert checked.body["epsilon"] == 1.0 and 0 <= checked.body["delta"] < 1e-3
    assert release.kind == "release" and release.body["data_form"] == "dp"


def test_the_budget_is_accounted_shown_and_enforced(tmp_path: Path) -> None:
    tre = build(tmp_path, practices=1, patients=30)
    try:
        researcher = tre.principal("researcher")
        assert tre.service.budget(researcher, "demo-research")["epsilon_left"] == 3.0
        spent = [
            tre.service.run(researcher, "demo-research", BY_SEX, mode="dp", epsilon=1.0)
            for _ in range(3)
        ]
        assert [o.status for o in spent] == ["released"] * 3
        assert [o.budget_left for o in spent] == pytest.approx([2.0, 1.0, 0.0])
        refused = tre.service.run(researcher, "demo-research", BY_SEX, mode="dp", epsilon=0.1)
        assert refused.status == "refused" and "budget is exhausted" in refused.reason
        assert tre.service.budget(researcher, "demo-research")["epsilon_spent"] == 3.0
        # Rounding mode is not charged to the budget.
        assert tre.service.run(researcher, "demo-research", BY_SEX).status == "released"
    finally:
        tre.close()


def test_rounding_leaks_a_person_that_dp_bounds(tre: TreWorld) -> None:
    """Two queries whose populations differ by one person (the target, alone in their birth
    year). Under rounding, once the other filters bring the count to a rounding boundary, the
    two released counts differ and reveal the target. Under DP the difference between the two
    released counts is noise whose spread is set by epsilon, whoever the target is; and the
    budget (test above) stops the attacker averaging the noise away."""
    researcher = tre.principal("researcher")
    years = _birth_years(tre)
    target = next(year for year, n in sorted(years.items()) if n == 1)
    others = [year for year in sorted(years) if year != target]
    count = "SELECT count(DISTINCT patient_id) AS n FROM patients WHERE birth_year NOT IN ({})"
    leaked = False
    for k in range(len(others)):
        removed = ", ".join(str(y) for y in [0, *others[:k]])
        with_target = tre.service.run(researcher, "demo-research", count.format(removed))
        without = tre.service.run(researcher, "demo-research", count.format(f"{removed}, {target}"))
        a, b = with_target.result["rows"][0]["n"], without.result["rows"][0]["n"]
        if a is not None and b is not None and a != b:
            leaked = True  # the rounded counts differ by 5: the target is in the group
            break
    assert leaked, "rounding alone leaks the target for some population size"

    plan, _ = _plan("SELECT count(DISTINCT patient_id) AS n FROM patients")
    options = DpOptions(epsilon=0.5)
    differences = [
        release_dp(pa.table({"__n": [118]}), plan, options).rows[0]["n"]
        - release_dp(pa.table({"__n": [117]}), plan, options).rows[0]["n"]
        for _ in range(500)
    ]
    scale = 1 / 0.5  # Laplace scale: sensitivity 1 over epsilon 0.5
    expected_sd = scale * 2  # the difference of two Laplace(b) has sd 2b
    assert abs(statistics.mean(differences) - 1) < 0.6
    assert 0.8 * expected_sd < statistics.pstdev(differences) < 1.25 * expected_sd
    # Telling 118 from 117 is no better than the DP bound: P(diff > 0) stays near 1/2.
    above = sum(d > 0 for d in differences) / len(differences)
    assert above < 0.5 * np.exp(0.5) + 0.08


def _birth_years(tre: TreWorld) -> dict[int, int]:
    con = tre.world.hub.records.connect()
    rows = con.execute("SELECT birth_year, count(DISTINCT pseudonym) FROM patients GROUP BY 1")
    return {int(year): int(n) for year, n in rows.fetchall()}
