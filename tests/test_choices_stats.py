"""Opt-out statistics: counts by month and place, with small numbers suppressed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from confide.choices.model import ChangeRequest
from confide.choices.registry import ChoicesRegistry, DemographicRecord
from confide.choices.statistics import RULES, publishable, raw_counts, suppress
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, None), (1, None), (7, None), (8, 10), (10, 10), (12, 10), (13, 15), (22, 20), (23, 25)],
)
def test_suppression_rule(count: int, shown: int | None) -> None:
    assert suppress(count) == shown


@pytest.fixture
def registry(opstore, tmp_path: Path):
    reg = ChoicesRegistry.open(Home.at(tmp_path / "home"))
    numbers = [str(n) for n in generate_test_numbers(60, np.random.default_rng(5))]
    reg.enrol_demographics(
        DemographicRecord(
            n, date(1970, 1, 1), "LS1 4AP" if i < 40 else "M1 1AE", "B82001" if i < 40 else "P84002"
        )
        for i, n in enumerate(numbers)
    )
    jan, mar = datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    reg.bulk_set(ChangeRequest(n, {"no_research": True}, "letter", at=jan) for n in numbers[:33])
    reg.bulk_set(ChangeRequest(n, {"no_research": True}, "letter", at=jan) for n in numbers[40:45])
    # Three people at the first practice withdraw in March, by letter as they opted out.
    reg.bulk_set(ChangeRequest(n, {"no_research": False}, "letter", at=mar) for n in numbers[:3])
    # Three more "withdraw" online, but their letters still hold: they stay counted.
    reg.bulk_set(ChangeRequest(n, {"no_research": False}, "online", at=mar) for n in numbers[3:6])
    yield reg
    reg.close()


def test_raw_counts_follow_month_end_state(registry) -> None:
    counts = raw_counts(registry, "practice", until=date(2026, 3, 31))
    assert counts[("2026-01", "B82001", "no_research")] == 33
    assert counts[("2026-02", "B82001", "no_research")] == 33
    assert counts[("2026-03", "B82001", "no_research")] == 30
    assert counts[("2026-03", "P84002", "no_research")] == 5
    area = raw_counts(registry, "area", until=date(2026, 3, 31))
    assert area[("2026-03", "LS1", "no_research")] == 30


def test_published_rows_are_protected_and_totals_summed_from_them(registry) -> None:
    rows = publishable(registry, "practice", until=date(2026, 3, 31))
    march = {(r["practice"], r["choice"]): r for r in rows if r["month"] == "2026-03"}
    assert abs(march[("B82001", "no_research")]["people"] - 30) <= RULES.count_bound
    assert march[("P84002", "no_research")]["people"] is None  # 5 people: hidden
    assert march[("P84002", "no_planning")]["redacted"]  # nobody: hidden just the same
    assert march[("total", "no_research")]["people"] == march[("B82001", "no_research")]["people"]
    for row in rows:
        assert row["people"] is None or row["people"] % 5 == 0
        assert row["people"] is None or row["people"] > 7 or row["practice"] == "total"
    # Every month, place and choice is present: nothing appears or disappears.
    assert len(rows) == 3 * 4 * 3
    assert publishable(registry, "practice", until=date(2026, 3, 31)) == rows  # repeatable


def _area_registry(tmp_path: Path, name: str, practice_of) -> tuple[ChoicesRegistry, list[str]]:
    """400 people enrolled at the practices ``practice_of(i)`` names."""
    reg = ChoicesRegistry.open(Home.at(tmp_path / name))
    numbers = [str(n) for n in generate_test_numbers(400, np.random.default_rng(11))]
    reg.enrol_demographics(
        DemographicRecord(n, date(1970, 1, 1), "LS1 4AP", practice_of(i))
        for i, n in enumerate(numbers)
    )
    return reg, numbers


@pytest.mark.parametrize("newcomers", range(1, 8))
def test_a_place_whose_first_few_opt_out_looks_unchanged(opstore, tmp_path, newcomers) -> None:
    # Forty practices of ten people: 100 people at the first ten opted out in January.
    reg, numbers = _area_registry(tmp_path, f"h{newcomers}", lambda i: f"P{i // 10:05d}")
    try:
        jan, mar = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
        reg.bulk_set(
            ChangeRequest(n, {"no_research": True}, "letter", at=jan) for n in numbers[:100]
        )
        # In March, 1..7 people at practice P00030 (nobody there before) opt out.
        first = numbers[300 : 300 + newcomers]
        reg.bulk_set(ChangeRequest(n, {"no_research": True}, "online", at=mar) for n in first)
        rows = publishable(reg, "practice", until=date(2026, 3, 31))
    finally:
        reg.close()
    feb = {(r["practice"], r["choice"]): r for r in rows if r["month"] == "2026-02"}
    mar_ = {(r["practice"], r["choice"]): r for r in rows if r["month"] == "2026-03"}
    assert feb.keys() == mar_.keys()  # no cell appears
    for key, before in feb.items():
        after = mar_[key]
        if key[0] == "total":
            continue
        assert (before["people"], before["redacted"]) == (after["people"], after["redacted"]), key
    # And the totals, summed from published cells only, do not move either.
    assert feb[("total", "no_research")] == {**mar_[("total", "no_research")], "month": "2026-02"}


def test_changes_in_large_cells_do_not_say_how_many_joined(opstore, tmp_path) -> None:
    """Adding 1..7 people to cells of 20 to 60: the published change is noisy and rounded,
    so each observed change is explained by several different true changes."""
    explained: dict[int, set[int]] = {}
    # Twenty practices of twenty people: 12 each opted out in January, then 0..7 more.
    reg, numbers = _area_registry(tmp_path, "large", lambda i: f"Q{i % 20:03d}")
    try:
        jan, mar = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
        base = numbers[:240]  # 12 per practice
        reg.bulk_set(ChangeRequest(n, {"no_research": True}, "letter", at=jan) for n in base)
        later = [n for i, n in enumerate(numbers[240:]) if i % 20 < (i // 20) % 8]
        reg.bulk_set(ChangeRequest(n, {"no_research": True}, "online", at=mar) for n in later)
        truth = raw_counts(reg, "practice", until=date(2026, 3, 31))
        rows = publishable(reg, "practice", until=date(2026, 3, 31))
    finally:
        reg.close()
    shown = {(r["month"], r["practice"]): r["people"] for r in rows if r["choice"] == "no_research"}
    for place in {p for (_, p, _) in truth}:
        joined = truth[("2026-03", place, "no_research")] - truth[("2026-02", place, "no_research")]
        change = (shown[("2026-03", place)] or 0) - (shown[("2026-02", place)] or 0)
        explained.setdefault(change, set()).add(joined)
    assert any(len(joins) > 1 for joins in explained.values()), explained
    for change in explained:
        assert change % 5 == 0  # never the exact number of newcomers, unless a multiple of 5
