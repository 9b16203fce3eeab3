"""Statistical disclosure control of every released cell, from the system's own cell figures.

Input: the rows of the system-written aggregation (:mod:`confide.tre.aggregation`): per cell,
its people, their record keys' sum and, per measure, its contributors, their key sum, the
clamped sum, the sum of absolute values and the two largest contributions. Nothing here reads
a number the researcher computed. The rules, in order:

1. **Threshold, whole rows.** A row (cell) with fewer people than the rule set's threshold is
   removed with its keys, unless every key of it was declared before the query ran (bands or a
   domain): then the row stays, with every measure suppressed, so a declared row's presence
   says nothing.
2. **Per measure.** A measure with fewer contributors than the threshold is suppressed (an
   empty one too: when a query isolates a person, "nobody" is a fact about them). A value
   measure is also suppressed when a few people dominate it: the p% rule (the total minus the
   two largest contributions is less than p-ratio times the largest), the nk rule (the n
   largest exceed k of the total), and the spread rules: leaving out whoever is furthest from
   the mean, the others must still vary (a query that gives everyone else a known constant
   would learn the one value that is not, so such a cell is suppressed whatever that value
   is); and a value with two levels, such as a 0/1 flag, needs the threshold of people at each
   level, since its mean counts them.
3. **Secondary suppression** (with totals): along every line of the table and its margin, a
   line with exactly one suppressed cell that has people in it gets a second (its smallest
   other cell), so no suppressed cell can be recovered by subtraction (an empty hidden cell
   does not count: it is too easily guessed).
4. **Perturbation** by the cell-key method: counts move by the published table (never below the
   threshold), then are rounded if the rule set says so; sums move by a fraction of the bound;
   means are perturbed sums over perturbed counts; quantiles are the mean of the k values
   nearest the quantile's rank, perturbed like sums over k.

Suppressed cells are released as empty, each with a label saying why; the perturbation and the
rows not shown are explained once, in the output's notes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import product
from typing import Any

from confide.tre.aggregation import AggregationPlan
from confide.tre.cellkey import cell_key, value_factor
from confide.tre.model import Dimension, Measure, MeasureKind
from confide.tre.rules import RuleSet

ALL = "(all)"  # the key of a dimension summed over, in a margin row
MAX_DECLARED_ROWS = 10_000


class OutputStatus(StrEnum):
    RELEASED = "released"
    HELD_FOR_REVIEW = "held_for_review"
    REFUSED = "refused"


def round_to(value: int, base: int) -> int:
    """Nearest multiple of ``base``, halves away from zero."""
    sign = -1 if value < 0 else 1
    return sign * ((abs(value) + base // 2) // base) * base


@dataclass(frozen=True)
class CellLabel:
    row: int
    column: str
    action: str  # suppressed | secondary
    reason: str


@dataclass(frozen=True)
class ReleasedCell:
    """A released (non-suppressed) measure of one row: which cell and contributor set it is,
    for the differencing check."""

    row: int
    level: int
    keys: tuple[Any, ...]
    measure: str
    people: int


@dataclass
class ProtectedOutput:
    """A protected table: only this leaves (after the differencing check)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    labels: list[CellLabel] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    released: list[ReleasedCell] = field(default_factory=list)

    @property
    def suppressed(self) -> int:
        return len(self.labels)

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "labels": [vars(label) for label in self.labels],
            "notes": self.notes,
        }


@dataclass
class _Row:
    level: int
    keys: tuple[Any, ...]
    stats: Mapping[str, Any]
    declared: bool
    values: dict[str, Any] = field(default_factory=dict)
    suppressed: dict[str, str] = field(default_factory=dict)  # measure -> reason
    secondary: set[str] = field(default_factory=set)

    @property
    def people(self) -> int:
        return int(self.stats.get("__n") or 0)


def protect(
    plan: AggregationPlan, cells: Iterable[Mapping[str, Any]], rules: RuleSet
) -> ProtectedOutput:
    """Apply ``rules`` to the aggregation's cells (see the module docstring)."""
    rows = _rows(plan, list(cells), rules)
    kept = [row for row in rows if row.declared or row.people >= rules.threshold]
    for row in kept:
        _primary(row, plan.measures, rules)
    if len(plan.levels) > 1:
        removed = [row for row in rows if not (row.declared or row.people >= rules.threshold)]
        for row in removed:  # not shown at all: hidden in every line they belong to
            for measure in plan.measures:
                row.suppressed[measure.name] = "row not shown"
        _secondary(kept + removed, plan)
    return _output(plan, kept, rules)


# -- rows ---------------------------------------------------------------------------------------


def _key_of(stats: Mapping[str, Any], dims: int) -> tuple[Any, ...]:
    return tuple(stats.get(f"__d{i}") for i in range(dims))


def _rows(plan: AggregationPlan, cells: list[Mapping[str, Any]], rules: RuleSet) -> list[_Row]:
    dims = plan.dimensions
    found: dict[tuple[int, tuple[Any, ...]], Mapping[str, Any]] = {
        (int(cell["__level"]), _key_of(cell, len(dims))): cell for cell in cells
    }
    rows: list[_Row] = []
    for level in plan.levels:
        kept = [i for i in range(len(dims)) if level >> i & 1]
        declared = _declared_keys(dims, kept)
        seen: set[tuple[Any, ...]] = set()
        for keys in declared or []:
            seen.add(keys)
            stats = found.get((level, keys), {"__n": 0})
            rows.append(_Row(level, keys, stats, declared=True))
        for (cell_level, keys), stats in found.items():
            if cell_level == level and keys not in seen:
                rows.append(_Row(level, keys, stats, declared=False))
    order = {level: index for index, level in enumerate(plan.levels)}
    declared_order = [
        {key: i for i, key in enumerate(dimension.keys() or [])} for dimension in dims
    ]  # declared keys keep the order they were declared in

    def sort_key(row: _Row) -> tuple[Any, ...]:
        parts = [
            (0, declared_order[i][key], 0.0, "")
            if key in declared_order[i]
            else (1, 0, *_sortable(key))
            for i, key in enumerate(row.keys)
        ]
        return (order[row.level], parts)

    rows.sort(key=sort_key)
    return rows


def _declared_keys(dims: Sequence[Dimension], kept: list[int]) -> list[tuple[Any, ...]] | None:
    """Every key combination of a level whose kept dimensions are all declared, else None."""
    choices: list[list[Any]] = []
    for i, dimension in enumerate(dims):
        if i not in kept:
            choices.append([None])
            continue
        keys = dimension.keys()
        if keys is None:
            return None
        choices.append(list(keys))
    total = math.prod(len(keys) for keys in choices)
    if total > MAX_DECLARED_ROWS:
        return None
    return [tuple(combination) for combination in product(*choices)]


def _sortable(value: Any) -> tuple[float, str]:
    """Numbers in numeric order, then text; missing values first."""
    if value is None:
        return (float("-inf"), "")
    text = str(value)
    try:
        return (float(text), text)
    except ValueError:
        return (float("inf"), text)


# -- primary suppression --------------------------------------------------------------------------


def _contributors(stats: Mapping[str, Any], j: int, measure: Measure) -> int:
    if measure.kind is MeasureKind.COUNT and measure.column is None:
        return int(stats.get("__n") or 0)
    return int(stats.get(f"__n{j}") or 0)


def _primary(row: _Row, measures: Sequence[Measure], rules: RuleSet) -> None:
    if row.people == 0 and not rules.zeros_disclosive:
        for measure in measures:
            if measure.is_value:
                row.suppressed[measure.name] = "nobody is in this row"
        return
    if row.people < rules.threshold:
        for measure in measures:
            row.suppressed[measure.name] = f"fewer than {rules.threshold} people in this row"
        return
    for j, measure in enumerate(measures):
        people = _contributors(row.stats, j, measure)
        if people == 0 and not rules.zeros_disclosive and not measure.is_value:
            continue  # released as 0: an empty cell describes nobody
        if people < rules.threshold:
            row.suppressed[measure.name] = f"fewer than {rules.threshold} people contribute"
            continue
        if measure.is_value:
            why = _dominance(row.stats, j, measure, rules)
            if why:
                row.suppressed[measure.name] = why


def _dominance(stats: Mapping[str, Any], j: int, measure: Measure, rules: RuleSet) -> str | None:
    """ACRO's dominance rules on the contributions' sizes, then the spread rules."""
    total = float(stats.get(f"__a{j}") or 0.0)
    largest = float(stats.get(f"__t1_{j}") or 0.0)
    second = float(stats.get(f"__t2_{j}") or 0.0)
    if total > 0:
        if total - largest - second < rules.p_ratio * largest:
            return (
                f"p% rule: the others' contributions are less than {rules.p_ratio:g} of the "
                "largest, so the second largest could estimate it closely"
            )
        n, k = rules.nk
        top = largest + (second if n >= 2 else 0.0)
        if top > k * total:
            return f"nk rule: the {n} largest contributions are more than {k:g} of the total"
    return _spread(stats, j, measure, rules)


def _spread(stats: Mapping[str, Any], j: int, measure: Measure, rules: RuleSet) -> str | None:
    """The spread rules: the others in a cell must hide any one person's value.

    Whoever is furthest from the cell's mean is left out, and the rest must still vary
    (squared deviations of at least ``spread_floor`` x the bounds' width squared): if they
    barely vary (everyone else given a known constant, say), the output would give the one
    value away, whatever it is, so the cell is suppressed whatever that value is. A value with
    two levels (a 0/1 flag) also needs the threshold of people at each level."""
    people = int(stats.get(f"__n{j}") or 0)
    low, high = stats.get(f"__lo{j}"), stats.get(f"__hi{j}")
    if people < 2 or low is None or high is None:
        return "too few people vary"
    low, high = float(low), float(high)
    at_low, at_high = int(stats.get(f"__nlo{j}") or 0), int(stats.get(f"__nhi{j}") or 0)
    if low != high and at_low + at_high == people and min(at_low, at_high) < rules.threshold:
        return (
            f"the values take two levels and fewer than {rules.threshold} people hold one of "
            "them: the output would count them"
        )
    mean = float(stats[f"__s{j}"]) / people
    squares = max(0.0, float(stats[f"__ss{j}"]) - people * mean * mean)
    furthest = max((high - mean) ** 2, (low - mean) ** 2)
    rest = squares - people / (people - 1) * furthest  # without the furthest person
    if rest < rules.spread_floor * measure.width**2:
        return (
            "spread rule: the others' values vary too little to hide any one person's value "
            "(with these bounds)"
        )
    return None


# -- secondary suppression ------------------------------------------------------------------------


def _secondary(rows: list[_Row], plan: AggregationPlan) -> None:
    """Until stable: any line (cells differing in one kept dimension, with their margin) that
    has exactly one suppressed cell of a measure gets its smallest other cell suppressed."""
    by_key = {(row.level, row.keys): row for row in rows}
    dims = len(plan.dimensions)
    groups: dict[tuple[int, int, tuple[Any, ...]], list[_Row]] = {}
    for row in rows:
        for i in range(dims):
            if row.level >> i & 1:
                rest = tuple(None if place == i else key for place, key in enumerate(row.keys))
                groups.setdefault((row.level, i, rest), []).append(row)
    lines = []
    for (level, i, rest), members in groups.items():
        margin = by_key.get((level & ~(1 << i), rest))
        if margin is not None:
            lines.append([margin, *members])
    changed = True
    while changed:
        changed = False
        for line in lines:
            for measure in plan.measures:
                if measure.kind is MeasureKind.QUANTILE:
                    continue  # not additive: a margin's quantile gives no cell's away
                # An empty hidden cell protects nothing (it is easily guessed to be empty):
                # a line needs two hidden cells with people in them, or none.
                hidden = [row for row in line if measure.name in row.suppressed and row.people > 0]
                shown = [row for row in line if measure.name not in row.suppressed]
                if len(hidden) != 1 or not shown:
                    continue
                smallest = min(shown, key=lambda row: row.people)
                smallest.suppressed[measure.name] = (
                    "secondary suppression: it would let a suppressed cell be worked out "
                    "from its total"
                )
                smallest.secondary.add(measure.name)
                changed = True


# -- perturbation and the table --------------------------------------------------------------------


def _key_sum(stats: Mapping[str, Any], j: int, measure: Measure) -> int:
    if measure.kind is MeasureKind.COUNT and measure.column is None:
        return int(stats.get("__k") or 0)
    return int(stats.get(f"__k{j}") or 0)


def _perturbed_count(people: int, key_sum: int, rules: RuleSet) -> int:
    if people == 0:
        return 0
    noisy = max(rules.threshold, people + rules.counts.perturbation(cell_key(key_sum)))
    return round_to(noisy, rules.rounding) if rules.rounding else noisy


def _value(row: _Row, j: int, measure: Measure, rules: RuleSet) -> float:
    """A value measure, perturbed by a fraction of its bounds' width read at its cell key:
    a sum by up to the fraction, a mean by up to the fraction over its people, a quantile by
    up to the fraction over the window's people."""
    stats = row.stats
    key = cell_key(_key_sum(stats, j, measure))
    people = max(1, _contributors(stats, j, measure))
    scale = rules.value_noise * measure.width * value_factor(key, str(measure.kind))
    if measure.kind is MeasureKind.SUM:
        value = float(stats[f"__s{j}"]) + scale
    elif measure.kind is MeasureKind.MEAN:
        value = (float(stats[f"__s{j}"]) + scale) / people
    else:
        value = float(stats[f"__q{j}"]) + scale / rules.threshold
    if measure.kind is not MeasureKind.SUM and measure.bounds is not None:
        value = min(max(value, measure.bounds[0]), measure.bounds[1])
    return _significant(value)


def _significant(value: float, digits: int = 6) -> float:
    if value == 0 or not math.isfinite(value):
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _output(plan: AggregationPlan, rows: list[_Row], rules: RuleSet) -> ProtectedOutput:
    dims = plan.dimensions
    columns = [dimension.name for dimension in dims] + [measure.name for measure in plan.measures]
    out = ProtectedOutput(columns=columns, rows=[])
    for index, row in enumerate(rows):
        record: dict[str, Any] = {}
        for i, dimension in enumerate(dims):
            record[dimension.name] = row.keys[i] if row.level >> i & 1 else ALL
        for j, measure in enumerate(plan.measures):
            if measure.name in row.suppressed:
                record[measure.name] = None
                action = "secondary" if measure.name in row.secondary else "suppressed"
                out.labels.append(
                    CellLabel(index, measure.name, action, row.suppressed[measure.name])
                )
                continue
            if measure.kind is MeasureKind.COUNT:
                people = _contributors(row.stats, j, measure)
                record[measure.name] = _perturbed_count(
                    people, _key_sum(row.stats, j, measure), rules
                )
            else:
                record[measure.name] = _value(row, j, measure, rules)
            out.released.append(
                ReleasedCell(
                    index, row.level, row.keys, measure.name, _contributors(row.stats, j, measure)
                )
            )
        out.rows.append(record)
    out.notes = _notes(plan, rules)
    return out


def _notes(plan: AggregationPlan, rules: RuleSet) -> list[str]:
    notes = []
    if any(not dimension.declared for dimension in plan.dimensions):
        notes.append(
            f"Rows with fewer than {rules.threshold} people are not shown (declare the "
            "dimension's bands or values to see every row)."
        )
    counts = any(measure.kind is MeasureKind.COUNT for measure in plan.measures)
    if counts:
        rounding = f", then rounded to the nearest {rules.rounding}" if rules.rounding else ""
        notes.append(
            f"Counts are perturbed by at most ±{rules.counts.max} by the cell-key method"
            f"{rounding}: the same people always give the same figure; released counts are "
            f"never below {rules.threshold}."
        )
    for measure in plan.measures:
        if measure.is_value and measure.bounds is not None:
            low, high = measure.bounds
            notes.append(
                f"{measure.name}: each person's value is clamped to [{low:g}, {high:g}] and "
                f"the result perturbed by at most ±{rules.value_noise:g} × {measure.width:g}"
                + (" over the people counted" if measure.kind is not MeasureKind.SUM else "")
                + (
                    f"; quantiles are the mean of the {rules.threshold} values nearest the quantile"
                    if measure.kind is MeasureKind.QUANTILE
                    else ""
                )
                + "."
            )
    if len(plan.levels) > 1:
        notes.append(f"Rows with '{ALL}' are totals over that dimension.")
    return notes
