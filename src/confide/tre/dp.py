"""Differential privacy over the system's cells: counts, sums and means, with OpenDP noise.

A project the approver set to differential privacy answers from the same aggregation as every
other (:mod:`confide.tre.aggregation`), with every person's contribution bounded: each person
counts in at most ``contributions`` cells of a query (the project's bound, set at approval), and
each value measure's contribution is the person's own total or mean in the cell, clamped to the
declared bounds. Then:

* the people in each cell go through OpenDP's ``make_laplace_threshold`` when the keys come
  from the data (a group whose noisy count is below a threshold chosen for ``delta`` is not
  released, so a group that exists because of one person shows with probability at most
  ``delta``), or plain ``make_laplace`` when every key was declared in advance (bands or a
  domain: every declared row is released, present or not);
* counts of people for whom a flag holds, and sums, get Laplace noise of their sensitivity
  (``contributions`` and ``contributions x bound``); a mean is a noisy sum over a noisy count;
* the query's epsilon is split evenly over its measurements (sequential composition), and each
  released number carries its 95% interval.

Quantiles and totals are not available in this mode (their sensitivity is not bounded by these
mechanisms); the refusal says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import opendp.prelude as dp

from confide.common.errors import InvalidInput
from confide.tre.aggregation import AggregationPlan
from confide.tre.model import MeasureKind, ModelRefused, QueryDefinition

dp.enable_features("contrib")

DEFAULT_DELTA = 1e-7
MAX_CONTRIBUTIONS = 20
CONFIDENCE = 0.95


@dataclass(frozen=True)
class DpOptions:
    """One DP query's parameters: its epsilon (from the project's budget) and the project's
    bound on cells per person."""

    epsilon: float
    contributions: int = 1
    delta: float = DEFAULT_DELTA

    def __post_init__(self) -> None:
        if not (
            isinstance(self.epsilon, int | float)
            and math.isfinite(self.epsilon)
            and 0 < self.epsilon <= 10
        ):
            raise InvalidInput("epsilon must be a number above 0 and at most 10.")
        if not 1 <= int(self.contributions) <= MAX_CONTRIBUTIONS:
            raise InvalidInput(f"contributions must be between 1 and {MAX_CONTRIBUTIONS}.")
        if not 0 < self.delta < 1e-3:
            raise InvalidInput("delta must be above 0 and below 0.001.")


@dataclass
class DpOutput:
    columns: list[str]
    rows: list[dict[str, Any]]
    intervals: list[dict[str, list[float]]]
    epsilon: float
    delta: float
    labels: list[dict[str, Any]]
    threshold: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The released result, shaped like a disclosure-controlled one, with 95% intervals."""
        notes: list[str] = []
        if self.threshold is not None:
            notes.append(
                f"Groups whose noisy count of people is below {self.threshold:.1f} are not "
                "released (a group must not exist because of one person)."
            )
        return {
            "columns": self.columns,
            "rows": self.rows,
            "intervals": self.intervals,
            "confidence": 0.95,
            "labels": self.labels,
            "notes": notes,
            "epsilon": self.epsilon,
            "delta": self.delta,
        }


# --- noise ----------------------------------------------------------------------------------


def _laplace(values: list[float], sensitivity: float, epsilon: float) -> tuple[list[float], float]:
    scale = sensitivity / epsilon
    if not values:
        return [], scale
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float), scale=scale
    )
    assert measurement.map(sensitivity) <= epsilon * (1 + 1e-9)
    return list(measurement([float(value) for value in values])), scale


def _threshold_counts(
    counts: dict[str, float], contributions: int, epsilon: float, delta: float
) -> tuple[dict[str, float], float, float, float]:
    """Noisy counts of the groups whose noisy count passes a threshold chosen for ``delta``;
    also the Laplace scale, the delta spent and the threshold."""
    scale = contributions / epsilon
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=float, nan=False))
    metric = dp.l01inf_distance(dp.absolute_distance(T=float))
    d_in = (contributions, float(contributions), 1.0)

    def make(threshold: float) -> Any:
        return dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)

    low, high = 1.0, 1.0 + scale * 200
    while high - low > 0.01:
        middle = (low + high) / 2
        if make(middle).map(d_in)[1] <= delta:
            high = middle
        else:
            low = middle
    measurement = make(high)
    spent_epsilon, spent_delta = measurement.map(d_in)
    assert spent_epsilon <= epsilon * (1 + 1e-9)
    return dict(measurement(counts)), scale, float(spent_delta), high


def _half_width(scale: float) -> float:
    return float(dp.laplacian_scale_to_accuracy(scale, 1 - CONFIDENCE))


def check_dp_definition(definition: QueryDefinition) -> None:
    """Refuse what DP mode cannot release with a bounded sensitivity."""
    if definition.totals:
        raise ModelRefused(
            "differentially private mode: totals are not available; add the noisy cells "
            "(their noise adds up, and costs no further budget)"
        )
    for measure in definition.measures:
        if measure.kind is MeasureKind.QUANTILE:
            raise ModelRefused(
                f"differentially private mode: {measure.name!r} is a quantile, which this mode "
                "does not release; use a mean"
            )


def release_dp(
    plan: AggregationPlan, cells: Sequence[Mapping[str, Any]], options: DpOptions
) -> DpOutput:
    """Add calibrated noise to each cell's people and measures; 95% intervals beside them."""
    dims = plan.dimensions
    measures = plan.measures
    share = options.epsilon / _measurements(plan)
    per_person = options.contributions
    by_key = {tuple(row.get(f"__d{i}") for i in range(len(dims))): row for row in cells}
    declared = [dimension.keys() for dimension in dims]
    delta = 0.0
    threshold = None
    released: list[tuple[Any, ...]]
    noisy_n: dict[tuple[Any, ...], float]
    if dims and all(keys is not None for keys in declared):
        released = [tuple(key) for key in product(*[keys for keys in declared if keys is not None])]
        counts, n_scale = _laplace(
            [float(by_key.get(key, {}).get("__n") or 0) for key in released], per_person, share
        )
        noisy_n = dict(zip(released, counts, strict=True))
    elif dims:
        text = {repr(key): key for key in by_key}
        kept, n_scale, delta, threshold = _threshold_counts(
            {repr(key): float(row["__n"]) for key, row in by_key.items()},
            per_person,
            share,
            options.delta,
        )
        noisy_n = {text[shown]: count for shown, count in kept.items()}
        released = sorted(noisy_n, key=lambda key: [str(part) for part in key])
    else:
        total = float(cells[0]["__n"]) if cells else 0.0
        values, n_scale = _laplace([total], per_person, share)
        released = [()]
        noisy_n = {(): values[0]}
    noisy: dict[int, list[float]] = {}
    scales: dict[int, float] = {}
    for j, measure in enumerate(measures):
        if measure.kind is MeasureKind.COUNT and measure.column is None:
            continue
        if measure.kind is MeasureKind.COUNT:
            values_j = [float(by_key.get(key, {}).get(f"__n{j}") or 0) for key in released]
            noisy[j], scales[j] = _laplace(values_j, per_person, share)
        else:
            sums = [float(by_key.get(key, {}).get(f"__s{j}") or 0.0) for key in released]
            noisy[j], scales[j] = _laplace(sums, per_person * measure.bound, share)
            if measure.kind is MeasureKind.MEAN:
                people = [float(by_key.get(key, {}).get(f"__n{j}") or 0) for key in released]
                noisy[-1 - j], scales[-1 - j] = _laplace(people, per_person, share)
    rows: list[dict[str, Any]] = []
    intervals: list[dict[str, list[float]]] = []
    rng = np.random.default_rng()
    for index, key in enumerate(released):
        row: dict[str, Any] = {dimension.name: key[i] for i, dimension in enumerate(dims)}
        interval: dict[str, list[float]] = {}
        for j, measure in enumerate(measures):
            if measure.kind is MeasureKind.COUNT:
                value = noisy_n[key] if measure.column is None else noisy[j][index]
                scale = n_scale if measure.column is None else scales[j]
                half = _half_width(scale)
                row[measure.name] = max(0, round(value))
                interval[measure.name] = [max(0.0, value - half), value + half]
            elif measure.kind is MeasureKind.SUM:
                half = _half_width(scales[j])
                row[measure.name] = noisy[j][index]
                interval[measure.name] = [noisy[j][index] - half, noisy[j][index] + half]
            else:
                row[measure.name], interval[measure.name] = _mean(
                    noisy[j][index],
                    noisy[-1 - j][index],
                    scales[j],
                    scales[-1 - j],
                    measure.bounds,
                    rng,
                )
        rows.append(row)
        intervals.append(interval)
    labels = [
        {
            "column": measure.name,
            "action": "noise",
            "reason": f"Laplace noise (epsilon {share:.4g} of {options.epsilon:g}); each person "
            f"counted in at most {per_person} group(s)"
            + (
                f"; values clamped to [{measure.bounds[0]:g}, {measure.bounds[1]:g}]"
                if measure.bounds
                else ""
            ),
        }
        for measure in measures
    ]
    return DpOutput(
        columns=[dimension.name for dimension in dims] + [measure.name for measure in measures],
        rows=rows,
        intervals=intervals,
        epsilon=options.epsilon,
        delta=delta,
        labels=labels,
        threshold=threshold,
    )


def _measurements(plan: AggregationPlan) -> int:
    """How many noisy measurements the query makes (its epsilon is split over them)."""
    count = 1  # people per cell: always measured (it decides which groups are released)
    for measure in plan.measures:
        if measure.kind is MeasureKind.COUNT:
            count += 0 if measure.column is None else 1
        else:
            count += 2 if measure.kind is MeasureKind.MEAN else 1
    return count


def _mean(
    noisy_sum: float,
    noisy_people: float,
    sum_scale: float,
    people_scale: float,
    bounds: tuple[float, float] | None,
    rng: np.random.Generator,
) -> tuple[float | None, list[float]]:
    """Ratio estimate clamped to the bounds; the interval is simulated from the two noise
    distributions around the released values (post-processing: it costs no budget)."""
    assert bounds is not None
    low, high = bounds
    if noisy_people < 1:
        return None, [low, high]
    value = min(high, max(low, noisy_sum / noisy_people))
    sums = noisy_sum + rng.laplace(0.0, sum_scale, 4000)
    people = np.maximum(1.0, noisy_people + rng.laplace(0.0, people_scale, 4000))
    ratios = np.clip(sums / people, low, high)
    tail = (1 - CONFIDENCE) / 2
    return value, [float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))]
