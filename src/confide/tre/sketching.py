"""Which contributor sets of an output are sketched, and what each one *is*.

The differencing check (:mod:`confide.tre.differencing`) compares sets by who is in them; this
module names them: every released cell's people, and its count and sum measures'
contributors, each with a readable name and an *identity*: the cell as defined (its
population's sources and filters, the measure, the cell's dimensions and keys), not who is in
it. Two cells with the same identity are the same cell asked again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from confide.common import canonical
from confide.tre.aggregation import AggregationPlan, sketch_sets
from confide.tre.differencing import CellSketch, sketches_from_rows
from confide.tre.disclosure import ALL, ProtectedOutput, ReleasedCell
from confide.tre.guard import PATIENT_COLUMN
from confide.tre.model import Measure, MeasureKind, QueryDefinition
from confide.tre.person_level import PersonLevelQuery


def released_sketches(
    definition: QueryDefinition,
    population: PersonLevelQuery,
    plan: AggregationPlan,
    output: ProtectedOutput,
    rows: Iterable[Mapping[str, Any]] | None,
) -> list[CellSketch]:
    """The sketches of the sets ``output`` releases, from the aggregation's sketch rows: the
    people of each released count, the contributors of each released sum."""
    names = [name for name, _ in sketch_sets(definition)]
    measures = {measure.name: measure for measure in definition.measures}
    core = population_core(population)
    describe: dict[tuple[Any, ...], tuple[str, int, str, str]] = {}
    for cell in output.released:
        measure = measures[cell.measure]
        if measure.kind is MeasureKind.COUNT:
            name, kind = ("" if measure.column is None else cell.measure), "count"
        elif measure.kind is MeasureKind.SUM:
            name, kind = cell.measure, "sum " + _column(core, measure.column)
        else:
            continue
        if name not in names:
            continue
        label = cell_label(plan, cell.level, cell.keys)
        shown = f"{name} of {label}" if name else f"the people of {label}"
        describe[(cell.level, cell.keys, name)] = (
            shown,
            cell.people,
            identity(plan, core, name, measure, cell),
            kind,
        )
    return sketches_from_rows(rows or [], names, describe, len(plan.dimensions))


def _column(core: dict[str, Any], column: str | None) -> str:
    return str(core["columns"].get(column or "", column or ""))


def population_core(population: PersonLevelQuery) -> dict[str, Any]:
    """Who a population is (its sources and filters, without its output columns) and what
    each output column is computed as: two queries that pick the same people the same way
    define the same cells, however their columns are named."""
    tree = population.checked.tree
    if not isinstance(tree, exp.Select):
        return {"sql": tree.sql(dialect="duckdb"), "columns": {}}
    columns = {item.alias_or_name: item.unalias().sql(dialect="duckdb") for item in tree.selects}
    core = tree.copy()
    core.set("expressions", [exp.column(PATIENT_COLUMN)])
    return {"sql": core.sql(dialect="duckdb"), "columns": columns}


def identity(
    plan: AggregationPlan,
    core: dict[str, Any],
    name: str,
    measure: Measure,
    cell: ReleasedCell,
) -> str:
    """What a sketched set is, as defined (not who is in it): its population, the measure
    whose contributors it is, and the cell's dimensions and keys."""
    columns = core["columns"]
    kept = [
        [columns.get(d.column, d.column), "bands" if d.bands is not None else "values"]
        for i, d in enumerate(plan.dimensions)
        if cell.level >> i & 1
    ]  # a domain only renames values outside it: its other keys are the plain values
    what: dict[str, Any] = {
        "population": core["sql"],
        "dimensions": kept,
        "keys": [str(key) for key in cell.keys],
    }
    if name:
        column = measure.column or ""
        what["measure"] = [measure.kind.value, columns.get(column, column)]
    return hashlib.sha256(canonical.dumps(what)).hexdigest()


def cell_label(plan: AggregationPlan, level: int, keys: tuple[Any, ...]) -> str:
    """A cell as people read it: ``(sex=female, born=(all))``."""
    parts = []
    for i, dimension in enumerate(plan.dimensions):
        value = keys[i] if level >> i & 1 else ALL
        parts.append(f"{dimension.name}={value}")
    return "(" + ", ".join(parts) + ")" if parts else "(everyone)"
