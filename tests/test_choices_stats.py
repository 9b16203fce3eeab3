"""Opt-out statistics: counts by month and place, with small numbers suppressed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from confide.choices.model import ChangeRequest
from confide.choices.registry import ChoicesRegistry, DemographicRecord
from confide.choices.statistics import publishable, raw_counts, suppress
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


def test_published_rows_are_suppressed_and_totals_recomputed(registry) -> None:
    rows = publishable(registry, "practice", until=date(2026, 3, 31))
    march = {r["practice"]: r for r in rows if r["month"] == "2026-03"}
    assert march["B82001"]["people"] == 30
    assert march["P84002"]["people"] is None and march["P84002"]["redacted"]
    assert march["total"]["people"] == 30  # from rounded cells: the 5 hidden ones stay hidden
    jan = {r["practice"]: r for r in rows if r["month"] == "2026-01"}
    assert jan["B82001"]["people"] == 35  # 33 rounds to 35
    for row in rows:
        assert row["people"] is None or row["people"] % 5 == 0
        assert row["people"] is None or row["people"] > 7 or row["practice"] == "total"
