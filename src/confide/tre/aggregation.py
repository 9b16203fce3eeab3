"""Stage 2: the aggregation across people, written by the system from a query definition.

The researcher never writes this SQL. From the checked population (stage 1) and the
definition's dimensions and measures it builds, in one generator for every engine:

``__keyed``
    one row per person per cell: the cell's keys (each dimension cast to text, banded or
    limited to its domain), for each measure the person's contribution (a flag for counts;
    the person's total or mean for value measures, clamped to the declared bounds), and the
    person's hidden keys from the TRE (``__rkey`` for the cell-key method; ``__sid``,
    ``__chk`` and three bucket numbers for the contributor sketches). With totals, one set of
    rows per level (the full table, each margin, the grand total). In DP mode each person
    keeps at most ``contributions`` cells.
``cells``
    per cell: people, their key sum, and per measure its contributors, their key sum, the
    clamped sum, the sum of absolute values and the two largest (for dominance rules), the sum
    of squares, least and greatest (for the spread rule), and for quantiles the mean of the k
    values nearest the quantile's rank.
``sketches``
    per cell, measure and bucket: the count, XOR of ids and XOR of checks of the contributors
    (an invertible Bloom lookup table, read by :mod:`confide.tre.differencing`).

The statements are written once in DuckDB's dialect and transpiled for Spark (Splink's way:
one SQL generator, many backends); the population inside is each engine's own text (DuckDB
with TRY, Spark without, see :mod:`confide.tre.totality`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import sqlglot
from sqlglot import exp

from confide.tre.cellkey import BUCKET_COLUMNS, HASHES
from confide.tre.model import OTHER, Dimension, Measure, MeasureKind, QueryDefinition
from confide.tre.person_level import PersonLevelQuery
from confide.tre.totality import without_try

RECORD_KEYS = "__record_keys"  # patient_id, __rkey, __sid, __chk and the bucket columns
KEYED = "__keyed"
_STAGE_ONE = "__stage_one"


@dataclass(frozen=True)
class AggregationPlan:
    """The statements of one query on one engine, and how to read their rows."""

    keyed: str  # the SELECT whose rows become the __keyed relation
    cells: str  # over __keyed: one row per cell (and level)
    sketches: str | None  # over __keyed: one row per cell, level and bucket (None: nothing)
    dimensions: tuple[Dimension, ...]
    measures: tuple[Measure, ...]
    levels: tuple[int, ...]  # bit i set: dimension i is kept at that level

    @property
    def full_level(self) -> int:
        return (1 << len(self.dimensions)) - 1


def plan_aggregation(
    population: PersonLevelQuery,
    definition: QueryDefinition,
    *,
    dialect: str,
    contributions: int | None = None,
    quantile_window: int = 10,
) -> AggregationPlan:
    """The stage-2 statements for ``dialect`` (``duckdb`` or ``spark``).

    ``contributions``: the DP bound on cells per person (None: no bound, for disclosure
    control); ``quantile_window``: how many people's values each quantile averages."""
    dims = definition.dimensions
    full = (1 << len(dims)) - 1
    if definition.totals:
        levels = tuple(
            sorted(
                {
                    sum(1 << i for i in keep)
                    for r in range(len(dims) + 1)
                    for keep in combinations(range(len(dims)), r)
                },
                reverse=True,
            )
        )
    else:
        levels = (full,)
    keyed = _keyed_sql(definition, levels, contributions)
    cells = _cells_sql(definition, quantile_window)
    sketches = _sketches_sql(definition)
    stage_one = population.total if dialect == "duckdb" else without_try(population.total)
    return AggregationPlan(
        keyed=_render(keyed, dialect, stage_one),
        cells=_render(cells, dialect, None),
        sketches=_render(sketches, dialect, None) if sketches else None,
        dimensions=dims,
        measures=definition.measures,
        levels=levels,
    )


def _render(sql: str, dialect: str, stage_one: exp.Expr | None) -> str:
    tree = sqlglot.parse_one(sql, read="duckdb")
    if stage_one is not None:
        for table in list(tree.find_all(exp.Table)):
            if table.name == _STAGE_ONE:
                table.replace(
                    exp.Subquery(
                        this=stage_one.copy(), alias=exp.TableAlias(this=exp.to_identifier("__s1"))
                    )
                )
    return tree.sql(dialect=dialect, comments=False)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _number(value: float) -> str:
    return repr(float(value))


# -- __keyed ----------------------------------------------------------------------------------


def _dimension_sql(dimension: Dimension) -> str:
    column = f"__s1.{_quote(dimension.column)}"
    if dimension.bands is not None:
        value = f"TRY_CAST({column} AS DOUBLE)"
        labels = dimension.band_labels()
        whens = [f"WHEN {value} < {_number(dimension.bands[0])} THEN {_literal(labels[0])}"]
        for edge, label in zip(dimension.bands[1:], labels[1:-1], strict=True):
            whens.append(f"WHEN {value} < {_number(edge)} THEN {_literal(label)}")
        whens.append(f"WHEN {value} >= {_number(dimension.bands[-1])} THEN {_literal(labels[-1])}")
        return f"CASE {' '.join(whens)} END"
    text = f"CAST({column} AS VARCHAR)"
    if dimension.domain is not None:
        listed = ", ".join(_literal(v) for v in dimension.domain)
        return f"CASE WHEN {text} IN ({listed}) THEN {text} ELSE {_literal(OTHER)} END"
    return text


def _measure_input(measure: Measure) -> str | None:
    if measure.column is None:
        return None
    column = f"__s1.{_quote(measure.column)}"
    if measure.kind is MeasureKind.COUNT:
        return f"TRY_CAST({column} AS BOOLEAN)"
    return f"TRY_CAST({column} AS DOUBLE)"


def _person_value(j: int, measure: Measure) -> str:
    """One person's contribution to measure ``j`` in one cell."""
    if measure.kind is MeasureKind.COUNT:
        if measure.column is None:
            return ""
        return f"coalesce(bool_or(__m{j}), false) AS __f{j}"
    assert measure.bounds is not None
    low, high = (_number(b) for b in measure.bounds)
    reduce = "sum" if measure.kind is MeasureKind.SUM else "avg"
    return f"least(greatest({reduce}(__m{j}), {low}), {high}) AS __v{j}"


def _keyed_sql(
    definition: QueryDefinition, levels: tuple[int, ...], contributions: int | None
) -> str:
    dims = definition.dimensions
    base_columns = ["__s1.patient_id AS __pid"]
    base_columns += [f"{_dimension_sql(d)} AS __d{i}" for i, d in enumerate(dims)]
    for j, measure in enumerate(definition.measures):
        value = _measure_input(measure)
        if value is not None:
            base_columns.append(f"{value} AS __m{j}")
    base = f"SELECT {', '.join(base_columns)} FROM {_STAGE_ONE} WHERE __s1.patient_id IS NOT NULL"
    values = [v for j, m in enumerate(definition.measures) if (v := _person_value(j, m))]
    parts = []
    for level in levels:
        kept = [i for i in range(len(dims)) if level >> i & 1]
        keys = [
            f"__d{i}" if i in kept else f"CAST(NULL AS VARCHAR) AS __d{i}" for i in range(len(dims))
        ]
        group = ", ".join(["__pid", *(f"__d{i}" for i in kept)])
        select = ", ".join([f"{level} AS __level", *keys, "__pid", *values])
        part = f"SELECT {select} FROM __base GROUP BY {group}"
        if contributions is not None:
            order = ", ".join(f"__d{i}" for i in kept) or "__pid"
            part += (
                f" QUALIFY row_number() OVER (PARTITION BY __pid ORDER BY {order}) "
                f"<= {int(contributions)}"
            )
        parts.append(part)
    cells = " UNION ALL ".join(parts)
    # The person's id is not kept: once joined to their keys, nothing needs it.
    columns = ["c.__level", *(f"c.__d{i}" for i in range(len(dims)))]
    columns += [f"c.{v.split(' AS ')[-1]}" for v in values]
    columns += [f"k.{name}" for name in ("__rkey", "__sid", "__chk", *BUCKET_COLUMNS)]
    return (
        f"WITH __base AS ({base}), __cells AS ({cells}) "
        f"SELECT {', '.join(columns)} FROM __cells c JOIN {RECORD_KEYS} k ON k.patient_id = c.__pid"
    )


# -- cells ------------------------------------------------------------------------------------


def _cell_keys(definition: QueryDefinition) -> list[str]:
    return ["__level", *(f"__d{i}" for i in range(len(definition.dimensions)))]


def _contributes(j: int, measure: Measure) -> str | None:
    """The condition under which a person contributes to measure ``j`` (None: always)."""
    if measure.kind is MeasureKind.COUNT:
        return f"__f{j}" if measure.column is not None else None
    return f"__v{j} IS NOT NULL"


def _cells_sql(definition: QueryDefinition, window: int) -> str:
    keys = _cell_keys(definition)
    partition = ", ".join(keys)
    ranked = ["k.*"]
    aggregates = ["count(*) AS __n", "sum(__rkey) AS __k"]
    for j, measure in enumerate(definition.measures):
        condition = _contributes(j, measure)
        if condition is not None:
            aggregates.append(f"count(*) FILTER (WHERE {condition}) AS __n{j}")
            aggregates.append(f"coalesce(sum(__rkey) FILTER (WHERE {condition}), 0) AS __k{j}")
        if measure.kind is MeasureKind.COUNT:
            continue
        ranked.append(
            f"row_number() OVER (PARTITION BY {partition} ORDER BY abs(__v{j}) DESC NULLS LAST)"
            f" AS __r{j}"
        )
        ranked.append(f"min(__v{j}) OVER (PARTITION BY {partition}) AS __wlo{j}")
        ranked.append(f"max(__v{j}) OVER (PARTITION BY {partition}) AS __whi{j}")
        aggregates += [
            f"sum(__v{j}) AS __s{j}",
            f"sum(abs(__v{j})) AS __a{j}",
            f"max(abs(__v{j})) FILTER (WHERE __r{j} = 1) AS __t1_{j}",
            f"max(abs(__v{j})) FILTER (WHERE __r{j} = 2) AS __t2_{j}",
            f"sum(__v{j} * __v{j}) AS __ss{j}",
            f"min(__v{j}) AS __lo{j}",
            f"max(__v{j}) AS __hi{j}",
            f"count(*) FILTER (WHERE __v{j} = __wlo{j}) AS __nlo{j}",
            f"count(*) FILTER (WHERE __v{j} = __whi{j}) AS __nhi{j}",
        ]
        if measure.kind is MeasureKind.QUANTILE:
            assert measure.q is not None
            ranked.append(
                f"row_number() OVER (PARTITION BY {partition} ORDER BY __v{j} NULLS LAST) AS __o{j}"
            )
            ranked.append(f"count(__v{j}) OVER (PARTITION BY {partition}) AS __c{j}")
            # The window of ``window`` ranks centred on the quantile's rank q(c-1)+1,
            # kept inside 1..c.
            centre = f"({_number(measure.q)} * (__c{j} - 1) + 1)"
            half = repr((window - 1) / 2)
            low = f"greatest(1, least(__c{j} - {window} + 1, round({centre} - {half})))"
            aggregates.append(
                f"avg(__v{j}) FILTER (WHERE __v{j} IS NOT NULL AND __o{j} >= {low} "
                f"AND __o{j} < {low} + {window}) AS __q{j}"
            )
    grouped = ", ".join(keys)
    return (
        f"SELECT {grouped}, {', '.join(aggregates)} "
        f"FROM (SELECT {', '.join(ranked)} FROM {KEYED} k) AS __ranked GROUP BY {grouped}"
    )


# -- sketches ---------------------------------------------------------------------------------


def sketch_sets(definition: QueryDefinition) -> list[tuple[str, str | None]]:
    """The contributor sets sketched per cell: the people counted by each count measure (the
    cell's people, ``""``, for a plain count) and the contributors of each sum, with the
    condition that selects them. Means and quantiles are not sums of their people, so they
    cannot be differenced by subtraction (see ``differencing``)."""
    sets: list[tuple[str, str | None]] = []
    for j, measure in enumerate(definition.measures):
        if measure.kind is MeasureKind.COUNT and measure.column is None:
            if ("", None) not in sets:
                sets.append(("", None))
        elif measure.kind in (MeasureKind.COUNT, MeasureKind.SUM):
            sets.append((measure.name, _contributes(j, measure)))
    return sets


def _sketches_sql(definition: QueryDefinition) -> str | None:
    if not sketch_sets(definition):
        return None  # nothing this output releases can be differenced by subtraction
    keys = _cell_keys(definition)
    aggregates = []
    for index, (_, condition) in enumerate(sketch_sets(definition)):
        where = f" FILTER (WHERE {condition})" if condition else ""
        aggregates += [
            f"count(*){where} AS __c{index}",
            f"coalesce(bit_xor(__sid){where}, 0) AS __x{index}",
            f"coalesce(bit_xor(__chk){where}, 0) AS __h{index}",
        ]
    grouped = ", ".join([*keys, "__bucket"])
    whens = " ".join(f"WHEN {i} THEN {column}" for i, column in enumerate(BUCKET_COLUMNS))
    hashes = ", ".join(f"({i})" for i in range(HASHES))
    return (
        f"SELECT {grouped}, {', '.join(aggregates)} FROM (SELECT k.*, CASE h.i {whens} "
        f"END AS __bucket FROM {KEYED} k CROSS JOIN (VALUES {hashes}) AS h(i)) AS __exploded "
        f"GROUP BY {grouped}"
    )
