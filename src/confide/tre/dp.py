"""Differential privacy: counts, sums and means of grouped queries, with OpenDP noise.

A DP query is one SELECT that groups by some keys (or none) and whose other output columns are
each one of ``count(DISTINCT x.patient_id)`` (people in the group), ``sum(expr)`` or
``avg(expr)``. The service rewrites it so that every person gives ONE value per group:

* a person's value for ``sum(expr)`` is the sum of ``expr`` over their rows in the group, then
  clamped to the column's bounds; for ``avg(expr)`` it is the mean of their rows, clamped, and
  the released mean is (noisy sum of person means) / (noisy number of people with a value);
* a person counts in at most ``contributions`` groups (default 1; chosen at random among their
  groups), so one person changes at most ``contributions`` cells of each measurement.

Bounds: ``bounds`` maps an output column name to ``(low, high)``; without one, a bare column
with a documented default (:data:`DEFAULT_BOUNDS`) uses that, and anything else is refused with
a request for bounds. Values outside the bounds are clamped (which biases the result, never the
privacy).

Noise: the people counts per group go through OpenDP's ``make_laplace_threshold`` (groups whose
noisy count is below a threshold are dropped, so a group that exists only because of one person
is released with probability at most ``delta``); sums and mean numerators through
``make_laplace`` on the released groups. The query's epsilon is split evenly over its
measurements (sequential composition). Every released number carries its 95% interval: the
Laplace half-width for counts and sums, and a simulated interval for means.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import opendp.prelude as dp
import pyarrow as pa
import sqlglot
from sqlglot import exp

from confide.common.errors import InvalidInput
from confide.tre.guard import PATIENT_COLUMN, CheckedQuery, QueryRefused
from confide.tre.rewrite import GROUP_CONTRIBUTORS, plan_contributors

dp.enable_features("contrib")

DEFAULT_DELTA = 1e-7
MAX_CONTRIBUTIONS = 20
CONFIDENCE = 0.95
# Public, documented clamping bounds for bare numeric columns of the views.
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "value": (0.0, 200.0),  # events.value: most lab results in their usual units
    "quantity": (0.0, 1000.0),  # medications.quantity: tablets, ml ... per issue
}
DpKind = Literal["key", "count", "sum", "mean"]


@dataclass(frozen=True)
class DpOptions:
    epsilon: float
    contributions: int = 1
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    delta: float = DEFAULT_DELTA

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, int | float) and 0 < self.epsilon <= 10):
            raise InvalidInput("epsilon must be a number above 0 and at most 10.")
        if not 1 <= int(self.contributions) <= MAX_CONTRIBUTIONS:
            raise InvalidInput(f"contributions must be between 1 and {MAX_CONTRIBUTIONS}.")
        if not 0 < self.delta < 1e-3:
            raise InvalidInput("delta must be above 0 and below 0.001.")
        for name, (low, high) in self.bounds.items():
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise InvalidInput(f"the bounds for {name!r} must be two numbers, low < high.")


@dataclass(frozen=True)
class DpColumn:
    name: str
    kind: DpKind
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class DpPlan:
    """The person-level SQL to run and how to read it. Hidden columns: ``__k<i>`` keys,
    ``__n`` people per group, ``__s<j>`` sums and ``__c<j>`` people with a value."""

    sql: str
    columns: tuple[DpColumn, ...]
    grouped: bool

    @property
    def measurements(self) -> int:
        return 1 + sum(1 if c.kind == "sum" else 2 if c.kind == "mean" else 0 for c in self.columns)


@dataclass
class DpOutput:
    columns: list[str]
    rows: list[dict[str, Any]]
    intervals: list[dict[str, list[float]]]
    epsilon: float
    delta: float
    labels: list[dict[str, Any]]
    threshold: float | None = None


def parse_bounds(specs: Iterable[str]) -> dict[str, tuple[float, float]]:
    """``mean_hba1c=20:120`` lines → ``{"mean_hba1c": (20.0, 120.0)}`` (clamping bounds for
    sums and means; blank lines are skipped). Used by the command line and the web console."""
    out: dict[str, tuple[float, float]] = {}
    for raw in specs:
        spec = raw.strip()
        if not spec:
            continue
        name, sep, rest = spec.partition("=")
        low, colon, high = rest.partition(":")
        try:
            if not (sep and colon and name.strip()):
                raise ValueError
            bounds = (float(low), float(high))
            if not all(math.isfinite(b) for b in bounds) or bounds[0] >= bounds[1]:
                raise ValueError
        except ValueError:
            raise InvalidInput(
                f"The bound {spec[:60]!r} is not in the form column=LOW:HIGH with LOW below HIGH.",
                hint="For example mean_value=0:200",
            ) from None
        out[name.strip()] = bounds
    return out


def _refuse(why: str) -> QueryRefused:
    return QueryRefused(f"differentially private mode: {why}")


def plan_dp(checked: CheckedQuery, allowed: Mapping[str, set[str]], options: DpOptions) -> DpPlan:
    """Rewrite ``checked`` to one row per group with person-level, clamped contributions."""
    base = plan_contributors(checked, allowed)  # refuses row-level outputs
    if base.held_reason:
        raise _refuse(
            "the query must be one SELECT of keys and count(DISTINCT patient_id), sum or avg "
            f"columns ({base.held_reason})"
        )
    tree = sqlglot.parse_one(base.sql, read="duckdb")
    assert isinstance(tree, exp.Select)
    projections = [p for p in tree.selects if not p.alias_or_name.startswith(GROUP_CONTRIBUTORS)]
    for clause in ("having", "limit", "offset", "qualify"):
        if tree.args.get(clause):
            raise _refuse(f"{clause.upper()} is not supported; every noisy group is released")
    keys: list[exp.Expression] = []
    columns: list[DpColumn] = []
    args: list[tuple[str, exp.Expression, tuple[float, float]]] = []
    for projection in projections:
        name = projection.alias_or_name
        inner = projection.unalias()
        if inner.find(exp.AggFunc) is None:
            keys.append(inner.copy())
            columns.append(DpColumn(name, "key"))
            continue
        kind, argument = _aggregate(inner, name)
        if kind == "count":
            columns.append(DpColumn(name, "count"))
            continue
        bounds = _bounds(name, argument, options)
        columns.append(DpColumn(name, kind, bounds))
        args.append((kind, argument.copy(), bounds))
    people = _people(tree)
    rows = tree.copy()
    for clause in ("group", "order", "limit", "offset"):
        rows.set(clause, None)
    rows.set(
        "expressions",
        [
            *(exp.alias_(k, f"__k{i}") for i, k in enumerate(keys)),
            exp.alias_(people, "__pid"),
            *(exp.alias_(a, f"__a{j}") for j, (_, a, _) in enumerate(args)),
        ],
    )
    sql = _person_sql(rows.sql(dialect="duckdb"), len(keys), args, options.contributions)
    return DpPlan(sql=sql, columns=tuple(columns), grouped=bool(keys))


def _aggregate(node: exp.Expression, name: str) -> tuple[str, exp.Expression | None]:
    if isinstance(node, exp.Filter):
        raise _refuse(f"FILTER in {name!r} is not supported; use WHERE or CASE")
    if isinstance(node, exp.Count):
        argument = node.this
        if isinstance(argument, exp.Distinct) and len(argument.expressions) == 1:
            column = argument.expressions[0]
            if isinstance(column, exp.Column) and column.name.lower() == PATIENT_COLUMN:
                return "count", None
        raise _refuse(f"{name!r}: counts are of people; write count(DISTINCT patient_id)")
    if isinstance(node, exp.Sum | exp.Avg) and not isinstance(node.this, exp.Distinct):
        return ("sum" if isinstance(node, exp.Sum) else "mean"), node.this
    raise _refuse(
        f"{name!r} must be one count(DISTINCT patient_id), sum(...) or avg(...) on its own"
    )


def _bounds(name: str, argument: exp.Expression | None, options: DpOptions) -> tuple[float, float]:
    if name in options.bounds:
        low, high = options.bounds[name]
        return float(low), float(high)
    if isinstance(argument, exp.Column) and argument.name.lower() in DEFAULT_BOUNDS:
        return DEFAULT_BOUNDS[argument.name.lower()]
    raise _refuse(
        f"give clamping bounds for {name!r} (for example --bound {name}=0:100); the DP mode "
        "must know the range of every summed value"
    )


def _people(select: exp.Select) -> exp.Expression:
    aliases = []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        aliases.append(from_.this.alias_or_name)
    aliases.extend(j.this.alias_or_name for j in select.args.get("joins") or [])
    columns = [exp.column(PATIENT_COLUMN, table=a, quoted=True) for a in aliases]
    return columns[0] if len(columns) == 1 else exp.func("COALESCE", *columns)


def _person_sql(
    rows_sql: str,
    key_count: int,
    args: list[tuple[str, exp.Expression, tuple[float, float]]],
    contributions: int,
) -> str:
    keys = [f"__k{i}" for i in range(key_count)]
    person_values = []
    totals = []
    for j, (kind, _, (low, high)) in enumerate(args):
        inner = "sum" if kind == "sum" else "avg"
        person_values.append(
            f"least(greatest(CAST({inner}(__a{j}) AS DOUBLE), {low!r}), {high!r}) AS __v{j}"
        )
        totals.append(f"coalesce(sum(__v{j}), 0.0) AS __s{j}, count(__v{j}) AS __c{j}")
    group_person = ", ".join([*keys, "__pid"])
    person = (
        f"SELECT {', '.join([*keys, '__pid', *person_values])} FROM ({rows_sql}) AS __rows "
        f"WHERE __pid IS NOT NULL GROUP BY {group_person}"
    )
    if keys:
        # A person's groups in a random order fixed for this query; keep the first few.
        seed = secrets.randbits(31)
        person += (
            f" QUALIFY row_number() OVER (PARTITION BY __pid ORDER BY hash({', '.join(keys)},"
            f" {seed})) <= {contributions}"
        )
    outer = ", ".join([*keys, "count(*) AS __n", *totals])
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return f"SELECT {outer} FROM ({person}) AS __person{group}"


# --- noise ----------------------------------------------------------------------------------


def _laplace(values: list[float], sensitivity: float, epsilon: float) -> tuple[list[float], float]:
    scale = sensitivity / epsilon
    if not values:
        return [], scale
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float), scale=scale
    )
    assert measurement.map(sensitivity) <= epsilon * (1 + 1e-9)
    return list(measurement([float(v) for v in values])), scale


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


def release_dp(table: pa.Table, plan: DpPlan, options: DpOptions) -> DpOutput:
    """Add calibrated noise to the person-level aggregates and report 95% intervals."""
    data = table.to_pylist()
    measures = plan.measurements
    share = options.epsilon / measures
    c = options.contributions
    keys = [col for col in plan.columns if col.kind == "key"]
    value_columns = [col for col in plan.columns if col.kind in ("sum", "mean")]

    def key_of(row: dict[str, Any]) -> str:
        return json.dumps([row[f"__k{i}"] for i in range(len(keys))], default=str)

    by_key = {key_of(row): row for row in data}
    delta = 0.0
    threshold = None
    if plan.grouped:
        noisy_n, n_scale, delta, threshold = _threshold_counts(
            {k: float(r["__n"]) for k, r in by_key.items()}, c, share, options.delta
        )
        released = sorted(noisy_n, key=lambda k: json.loads(k))
    else:
        total = float(data[0]["__n"]) if data else 0.0
        values, n_scale = _laplace([total], c, share)
        noisy_n, released = {"[]": values[0]}, ["[]"]
        by_key.setdefault("[]", {"__n": 0})
    noisy_sums: dict[int, list[float]] = {}
    noisy_counts: dict[int, list[float]] = {}
    scales: dict[int, tuple[float, float]] = {}
    for j, col in enumerate(value_columns):
        assert col.bounds is not None
        width = max(abs(col.bounds[0]), abs(col.bounds[1]))
        sums = [float(by_key.get(k, {}).get(f"__s{j}") or 0.0) for k in released]
        noisy_sums[j], s_scale = _laplace(sums, c * width, share)
        n_c_scale = 0.0
        if col.kind == "mean":
            people = [float(by_key.get(k, {}).get(f"__c{j}") or 0.0) for k in released]
            noisy_counts[j], n_c_scale = _laplace(people, c, share)
        scales[j] = (s_scale, n_c_scale)
    rows: list[dict[str, Any]] = []
    intervals: list[dict[str, list[float]]] = []
    rng = np.random.default_rng()
    for index, key in enumerate(released):
        row: dict[str, Any] = {}
        interval: dict[str, list[float]] = {}
        j = 0
        for col in plan.columns:
            if col.kind == "key":
                row[col.name] = by_key[key][f"__k{keys.index(col)}"]
            elif col.kind == "count":
                value = max(0.0, noisy_n[key])
                half = _half_width(n_scale)
                row[col.name] = round(value)
                interval[col.name] = [max(0.0, value - half), value + half]
            else:
                s_scale, c_scale = scales[j]
                noisy = noisy_sums[j][index]
                if col.kind == "sum":
                    half = _half_width(s_scale)
                    row[col.name] = noisy
                    interval[col.name] = [noisy - half, noisy + half]
                else:
                    row[col.name], interval[col.name] = _mean(
                        noisy, noisy_counts[j][index], s_scale, c_scale, col.bounds, rng
                    )
                j += 1
        rows.append(row)
        intervals.append(interval)
    labels = [
        {
            "column": col.name,
            "action": "noise",
            "reason": f"Laplace noise (epsilon {share:.4g} of {options.epsilon:g}); "
            f"each person counted in at most {c} group(s)"
            + (f"; values clamped to [{col.bounds[0]:g}, {col.bounds[1]:g}]" if col.bounds else ""),
        }
        for col in plan.columns
        if col.kind != "key"
    ]
    return DpOutput(
        columns=[col.name for col in plan.columns],
        rows=rows,
        intervals=intervals,
        epsilon=options.epsilon,
        delta=delta,
        labels=labels,
        threshold=threshold,
    )


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
