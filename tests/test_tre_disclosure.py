"""Disclosure control of every cell, from the system's own cell figures: the threshold with
whole rows, empty cells, dominance (p% and nk), the spread rules, secondary suppression through
margins, and the cell-key perturbation with its published table."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

import pytest
from tre_sandbox import ALLOWED

from confide.tre.aggregation import AggregationPlan, plan_aggregation
from confide.tre.cellkey import DEFAULT_COUNTS, KEY_SPACE, VALUE_TABLE, value_factor
from confide.tre.disclosure import ALL, protect, round_to
from confide.tre.guard import check_query
from confide.tre.person_level import check_person_level
from confide.tre.rules import RULE_SETS, perturbation_table, rule_set
from confide.tre.translate import read_query

ACRO, OPENSAFELY = RULE_SETS["acro"], RULE_SETS["opensafely"]


def plan(definition: dict[str, Any]) -> AggregationPlan:
    read = read_query(definition, ALLOWED)
    population = check_person_level(check_query(read.population, ALLOWED))
    return plan_aggregation(population, read, dialect="duckdb")


def by(
    *dims: Any, measures: list[dict[str, Any]] | None = None, totals: bool = False
) -> AggregationPlan:
    columns = ", ".join(["p.patient_id", "p.sex", "p.area", "p.birth_year"])
    return plan(
        {
            "population": f"SELECT {columns} FROM patients p",
            "dimensions": list(dims),
            "measures": measures or [{"kind": "count", "name": "n"}],
            "totals": totals,
        }
    )


def cell(
    *keys: Any, level: int | None = None, n: int, k: int | None = None, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"__level": (1 << len(keys)) - 1 if level is None else level, "__n": n}
    out["__k"] = k if k is not None else n * 7919
    out.update({f"__d{i}": key for i, key in enumerate(keys)})
    out.update(extra)
    return out


def value_cell(*keys: Any, values: list[float], j: int = 0, **extra: Any) -> dict[str, Any]:
    """The figures the aggregation gives for a value measure over these people's values."""
    people = len(values)
    ordered = sorted(values, key=abs, reverse=True)
    low, high = min(values), max(values)
    return cell(
        *keys,
        n=people,
        **{
            f"__n{j}": people,
            f"__k{j}": people * 104729,
            f"__s{j}": sum(values),
            f"__a{j}": sum(abs(v) for v in values),
            f"__t1_{j}": abs(ordered[0]),
            f"__t2_{j}": abs(ordered[1]) if people > 1 else None,
            f"__ss{j}": sum(v * v for v in values),
            f"__lo{j}": low,
            f"__hi{j}": high,
            f"__nlo{j}": sum(v == low for v in values),
            f"__nhi{j}": sum(v == high for v in values),
            f"__q{j}": sorted(values)[people // 2],
        },
        **extra,
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (2, 0), (3, 5), (7, 5), (8, 10), (12, 10), (13, 15)]
)
def test_rounding_is_to_the_nearest_five(value: int, expected: int) -> None:
    assert round_to(value, 5) == expected


def test_unknown_rule_sets_are_refused() -> None:
    assert rule_set("acro") is ACRO
    with pytest.raises(Exception, match="unknown rule set"):
        rule_set("exact")


# -- threshold -----------------------------------------------------------------------------


def test_a_row_below_the_threshold_is_removed_with_its_keys() -> None:
    out = protect(by("area"), [cell("LS1", n=40), cell("LS2", n=9), cell("LS3", n=10)], ACRO)
    assert [r["area"] for r in out.rows] == ["LS1", "LS3"]
    assert any("fewer than 10 people are not shown" in note for note in out.notes)
    assert not out.labels  # nothing to label: the row is not there at all


def test_declared_rows_always_show_and_their_small_cells_are_suppressed() -> None:
    dims = {"column": "area", "domain": ["LS1", "LS2", "LS3"]}
    out = protect(by(dims), [cell("LS1", n=40), cell("LS2", n=3)], ACRO)
    assert [r["area"] for r in out.rows] == ["LS1", "LS2", "LS3", "other"]
    shown = {r["area"]: r["n"] for r in out.rows}
    assert shown["LS2"] is None and shown["LS3"] is None  # 3 people, and nobody: the same
    assert {(label.row, label.action) for label in out.labels} >= {
        (1, "suppressed"),
        (2, "suppressed"),
    }
    assert not any("not shown" in note for note in out.notes)


def test_the_threshold_counts_people_not_the_figure_a_researcher_computed() -> None:
    flagged = by(
        "area",
        measures=[{"kind": "count", "name": "n"}, {"kind": "count", "name": "f", "column": "sex"}],
    )
    out = protect(flagged, [cell("LS1", n=50, __n1=4, __k1=11)], ACRO)
    row = out.rows[0]
    assert row["n"] is not None and row["f"] is None
    assert out.labels[0].column == "f" and "fewer than 10 people" in out.labels[0].reason


# -- perturbation ------------------------------------------------------------------------------


def test_the_perturbation_table_is_symmetric_with_mean_zero_and_covers_every_key() -> None:
    probabilities = DEFAULT_COUNTS.probabilities
    assert probabilities == probabilities[::-1] and abs(sum(probabilities) - 1) < 1e-12
    assert sum(p * (i - DEFAULT_COUNTS.max) for i, p in enumerate(probabilities)) == pytest.approx(
        0
    )
    rows = DEFAULT_COUNTS.rows()
    assert rows[0][2] == 0 and rows[-1][3] == KEY_SPACE - 1
    assert all(a[3] + 1 == b[2] for a, b in itertools.pairwise(rows))
    assert "| +3 |" in perturbation_table(ACRO)


def test_perturbation_follows_the_table_across_cell_keys() -> None:
    rng = random.Random(3)
    seen = Counter(DEFAULT_COUNTS.perturbation(rng.randrange(KEY_SPACE)) for _ in range(20000))
    for index, probability in enumerate(DEFAULT_COUNTS.probabilities):
        assert seen[index - DEFAULT_COUNTS.max] / 20000 == pytest.approx(probability, abs=0.015)
    assert sum(VALUE_TABLE) == pytest.approx(0, abs=1e-6) and max(map(abs, VALUE_TABLE)) <= 1


def test_the_same_people_always_get_the_same_count_and_others_get_fresh_noise() -> None:
    same = [
        protect(by("sex"), [cell("f", n=100, k=123456789)], ACRO).rows[0]["n"] for _ in range(3)
    ]
    assert len(set(same)) == 1
    noise = {
        protect(by("sex"), [cell("f", n=100, k=key)], ACRO).rows[0]["n"] - 100
        for key in range(0, 2**32, 2**32 // 500)
    }
    assert noise == set(range(-3, 4))  # every perturbation of the table shows up


def test_released_counts_are_never_below_the_threshold_and_round_when_asked() -> None:
    for key in range(0, 2**32, 2**32 // 300):
        near = protect(by("sex"), [cell("f", n=10, k=key)], ACRO).rows[0]["n"]
        assert 10 <= near <= 13
        rounded = protect(by("sex"), [cell("f", n=42, k=key)], OPENSAFELY).rows[0]["n"]
        assert rounded % 5 == 0 and 35 <= rounded <= 45


def test_value_measures_are_perturbed_within_a_share_of_their_bounds() -> None:
    mean = by(
        "sex", measures=[{"kind": "mean", "name": "m", "column": "birth_year", "bounds": [0, 100]}]
    )
    values = [float(v) for v in range(20, 80)]  # 60 people, mean 49.5
    out = protect(mean, [value_cell("f", values=values)], ACRO)
    assert abs(out.rows[0]["m"] - 49.5) <= ACRO.value_noise * 100 / 60 + 1e-9
    total = by(
        "sex", measures=[{"kind": "sum", "name": "s", "column": "birth_year", "bounds": [0, 100]}]
    )
    summed = protect(total, [value_cell("f", values=values)], ACRO).rows[0]["s"]
    assert abs(summed - sum(values)) <= ACRO.value_noise * 100 + 1e-9
    assert value_factor(12345, "sum") != value_factor(12345, "mean")  # unrelated draws


# -- dominance and spread -----------------------------------------------------------------------


SUM = [{"kind": "sum", "name": "s", "column": "birth_year", "bounds": [0, 1000]}]
MEAN = [{"kind": "mean", "name": "m", "column": "birth_year", "bounds": [0, 100]}]


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ([1000.0] + [0.000001] * 20, "p% rule"),  # one person is nearly all of it
        ([500.0, 480.0] + [3.0] * 20, "nk rule"),  # two people are more than 90%
    ],
)
def test_dominated_sums_are_suppressed(values: list[float], rule: str) -> None:
    out = protect(by("sex", measures=SUM), [value_cell("f", values=values)], ACRO)
    assert out.rows[0]["s"] is None and rule in out.labels[0].reason


def test_a_cell_whose_others_are_a_known_constant_is_suppressed_whatever_the_one_value() -> None:
    for one in (45.0, 50.0, 52.0, 97.0):
        out = protect(by("sex", measures=MEAN), [value_cell("f", values=[50.0] * 30 + [one])], ACRO)
        assert out.rows[0]["m"] is None, one
    varied = protect(
        by("sex", measures=MEAN),
        [value_cell("f", values=[float(v) for v in range(0, 100, 3)])],
        ACRO,
    )
    assert varied.rows[0]["m"] is not None


def test_a_two_level_value_needs_the_threshold_at_each_level() -> None:
    flags = [1.0] * 4 + [0.0] * 60
    flag_mean = by("sex", measures=[{"kind": "mean", "name": "m", "column": "birth_year",
                                     "bounds": [0, 1]}])  # fmt: skip
    out = protect(flag_mean, [value_cell("f", values=flags)], ACRO)
    assert out.rows[0]["m"] is None and "two levels" in out.labels[0].reason
    enough = [1.0] * 12 + [0.0] * 60
    out = protect(flag_mean, [value_cell("f", values=enough)], ACRO)
    assert out.rows[0]["m"] is not None


# -- secondary suppression -----------------------------------------------------------------------


def test_a_single_suppressed_cell_in_a_line_gets_a_second_one() -> None:
    dims = {"column": "area", "domain": ["A", "B", "C"]}
    cells = [cell("A", n=40), cell("B", n=30), cell("C", n=4), cell("other", n=0),
             cell(None, level=0, n=74)]  # fmt: skip
    out = protect(by(dims, totals=True), cells, ACRO)
    shown = {r["area"]: r["n"] for r in out.rows}
    assert shown["C"] is None and shown["other"] is None  # 4 people, and nobody
    # The empty cell is no cover (a reader would guess it is empty), so the smallest other
    # cell is hidden too and C cannot be worked out from the total.
    assert shown["B"] is None
    assert any(label.action == "secondary" for label in out.labels)


def test_removed_rows_are_hidden_cells_of_every_margin() -> None:
    cells = [cell("A", n=40), cell("B", n=30), cell("rare", n=2), cell(None, level=0, n=72)]
    out = protect(by("area", totals=True), cells, ACRO)
    shown = {r["area"]: r["n"] for r in out.rows}
    assert "rare" not in shown
    assert shown["B"] is None  # else the total minus A and B would count the removed row
    assert shown[ALL] is not None


def test_a_two_way_table_keeps_no_line_with_one_hidden_cell() -> None:
    sex = {"column": "sex", "domain": ["f", "m"]}
    area = {"column": "area", "domain": ["A", "B"]}
    full = [cell("f", "A", n=30), cell("f", "B", n=3), cell("m", "A", n=25), cell("m", "B", n=40),
            cell("f", "other", n=0), cell("m", "other", n=0)]  # fmt: skip
    margins = [
        cell("f", None, level=1, n=33), cell("m", None, level=1, n=65),
        cell(None, "A", level=2, n=55), cell(None, "B", level=2, n=43),
        cell(None, "other", level=2, n=0), cell(None, None, level=0, n=98),
    ]  # fmt: skip
    out = protect(by(sex, area, totals=True), full + margins, ACRO)
    rows = {(r["sex"], r["area"]): r["n"] for r in out.rows}
    people = {(c.get("__d0") or ALL, c.get("__d1") or ALL): c["__n"] for c in full + margins}
    sexes, areas = ["f", "m", "other", ALL], ["A", "B", "other", ALL]
    lines = [[(s, a) for a in areas] for s in sexes] + [[(s, a) for s in sexes] for a in areas]
    for line in lines:
        hidden_with_people = [k for k in line if rows[k] is None and people.get(k, 0) > 0]
        assert len(hidden_with_people) != 1, line
    assert rows[("f", "B")] is None
