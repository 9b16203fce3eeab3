"""Aggregate SQL, read as a query definition: the familiar form of a Confide query.

Researchers may write the whole table as one SQL query::

    SELECT p.sex, count(DISTINCT p.patient_id) AS patients
    FROM patients p JOIN events e ON e.patient_id = p.patient_id
    WHERE e.code = '44054006'
    GROUP BY p.sex

It is never run as written. It is read into a :class:`QueryDefinition`: its FROM, JOINs and
WHERE become the person-level population (one row per person and matching row, with the
GROUP BY expressions and the measures' inputs as columns), its GROUP BY expressions become the
dimensions, and each aggregate must be one of the measures below. The population then goes
through the same person-level check as any other, and the system writes the aggregation. So
this form can express exactly what the definition form can, and nothing more.

Measures: ``count(DISTINCT <view>.patient_id)`` (people; with ``FILTER (WHERE c)``: people for
whom ``c`` holds on at least one row), ``sum(x)``, ``avg(x)`` (each person's total or mean,
clamped to bounds the researcher declares by output name), ``median(x)`` and
``quantile_cont(x, q)``. Everything else in the outer SELECT is refused, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from confide.tre.guard import PATIENT_COLUMN, check_query
from confide.tre.model import (
    Dimension,
    Measure,
    MeasureKind,
    ModelRefused,
    QueryDefinition,
    definition_from_dict,
)


def read_query(
    query: str | Mapping[str, Any],
    allowed: Mapping[str, Iterable[str]],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    totals: bool = False,
) -> QueryDefinition:
    """A query as sent (aggregate SQL, or a definition object) read as a definition."""
    if isinstance(query, str):
        return definition_from_sql(query, allowed, bounds, totals=totals)
    if bounds:
        raise ModelRefused(
            "a query definition carries its measures' bounds itself; send no separate bounds"
        )
    definition = definition_from_dict(query)
    if totals and not definition.totals:
        definition = QueryDefinition(
            definition.population, definition.dimensions, definition.measures, totals=True
        )
    return definition


def definition_from_sql(
    sql: str,
    allowed: Mapping[str, Iterable[str]],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    totals: bool = False,
) -> QueryDefinition:
    """Read aggregate SQL into a definition; ``bounds`` maps value measures' output names to
    the (low, high) each person's value is clamped to."""
    checked = check_query(sql, allowed)
    tree = checked.tree
    if not isinstance(tree, exp.Select):
        raise ModelRefused(
            "the outer query must be one SELECT ... GROUP BY; UNION, INTERSECT and EXCEPT "
            "belong inside the population (a CTE or subquery)"
        )
    _refuse_outer_clauses(tree)
    keys = list((tree.args.get("group") or exp.Group()).expressions)
    key_sql = [k.sql(dialect="duckdb") for k in keys]
    anchor = _anchor(tree)
    bounds = dict(bounds or {})
    dimensions: list[Dimension] = []
    measures: list[Measure] = []
    columns: list[exp.Expr] = [exp.alias_(anchor, PATIENT_COLUMN, quoted=True)]
    used: set[str] = set()
    for projection in tree.selects:
        name = projection.alias_or_name
        value = projection.unalias()
        if value.find(exp.AggFunc) is None:
            if value.sql(dialect="duckdb") not in key_sql:
                raise ModelRefused(
                    f"{name!r} is neither grouped by nor a measure: only GROUP BY expressions "
                    "and measures (count of people, sum, avg, median, quantile_cont) may be "
                    "output"
                )
            dimensions.append(Dimension(column=name, name=name))
            columns.append(exp.alias_(value.copy(), name, quoted=True))
            used.add(value.sql(dialect="duckdb"))
            continue
        measure, inputs = _measure(value, name, bounds.get(name))
        if measure.is_value:
            bounds.pop(name, None)
        measures.append(measure)
        columns.extend(exp.alias_(expr.copy(), column, quoted=True) for column, expr in inputs)
    missing = [k for k, text in zip(keys, key_sql, strict=True) if text not in used]
    if missing:
        raise ModelRefused(
            "every GROUP BY expression must also be an output column (with a name), so each "
            f"row says which group it is: {missing[0].sql(dialect='duckdb')[:60]}"
        )
    if bounds:
        raise ModelRefused(
            f"bounds were given for {', '.join(sorted(bounds))}, which is not a sum, avg, "
            "median or quantile output of the query"
        )
    population = _population(tree, columns)
    return QueryDefinition(
        population=population.sql(dialect="duckdb", comments=False),
        dimensions=tuple(dimensions),
        measures=tuple(measures),
        totals=totals,
        source_sql=sql,
    )


def _refuse_outer_clauses(select: exp.Select) -> None:
    reasons = {
        "having": "HAVING is not allowed: the system decides which groups are released",
        "limit": "LIMIT is not allowed: every group that passes the checks is released",
        "offset": "OFFSET is not allowed: every group that passes the checks is released",
        "qualify": "QUALIFY is not allowed in the outer query",
        "distinct": "SELECT DISTINCT is not allowed in the outer query",
    }
    for clause, why in reasons.items():
        if select.args.get(clause):
            raise ModelRefused(why)
    group = select.args.get("group")
    rolled = group is not None and (
        any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets"))
        or group.find(exp.Rollup, exp.Cube, exp.GroupingSets) is not None
    )
    if rolled:
        raise ModelRefused(
            "ROLLUP, CUBE and GROUPING SETS are not allowed; ask for totals instead (--totals)"
        )
    if group is None and not any(p.find(exp.AggFunc) for p in select.selects):
        raise ModelRefused(
            "only aggregates leave: group the rows and count people "
            "(count(DISTINCT patient_id)), or sum, average or take quantiles of a value"
        )
    for projection in select.selects:
        if projection.find(exp.Window):
            raise ModelRefused(
                f"{projection.alias_or_name!r}: window functions belong in the population "
                "(a CTE or subquery partitioned by patient_id), not in the outer query"
            )


def _anchor(select: exp.Select) -> exp.Column:
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None:
        raise ModelRefused("the query reads no view")
    alias = from_.this.alias_or_name
    return exp.column(PATIENT_COLUMN, table=alias, quoted=True)


def _measure(
    value: exp.Expr, name: str, bounds: tuple[float, float] | None
) -> tuple[Measure, list[tuple[str, exp.Expr]]]:
    """One outer aggregate as a measure, and the population columns it needs."""
    condition: exp.Expr | None = None
    if isinstance(value, exp.Filter):
        where = value.expression
        condition = where.this if isinstance(where, exp.Where) else where
        value = value.this
    if isinstance(value, exp.Count):
        argument = value.this
        if not (
            isinstance(argument, exp.Distinct)
            and len(argument.expressions) == 1
            and isinstance(argument.expressions[0], exp.Column)
            and argument.expressions[0].name.lower() == PATIENT_COLUMN
        ):
            raise ModelRefused(
                f"{name!r}: Confide counts people, not rows; write count(DISTINCT "
                "patient_id) (to count events per person, count them in a population "
                "subquery grouped by patient_id and sum that with bounds)"
            )
        if condition is None:
            return Measure(MeasureKind.COUNT, name), []
        flag = f"{name}_flag"
        return Measure(MeasureKind.COUNT, name, column=flag), [(flag, condition)]
    kind, argument, q = _value_aggregate(value, name)
    if condition is not None:
        argument = exp.Case(ifs=[exp.If(this=condition.copy(), true=argument.copy())])
    column = f"{name}_value"
    return Measure(kind, name, column=column, bounds=bounds, q=q), [(column, argument)]


def _value_aggregate(value: exp.Expr, name: str) -> tuple[MeasureKind, exp.Expr, float | None]:
    if isinstance(value, exp.Sum | exp.Avg) and not isinstance(value.this, exp.Distinct):
        kind = MeasureKind.SUM if isinstance(value, exp.Sum) else MeasureKind.MEAN
        return kind, value.this, None
    if isinstance(value, exp.Median):
        return MeasureKind.QUANTILE, value.this, 0.5
    if isinstance(value, exp.Quantile | exp.PercentileCont | exp.WithinGroup):
        return _quantile(value, name)
    if isinstance(value, exp.Min | exp.Max | exp.Mode | exp.PercentileDisc):
        raise ModelRefused(
            f"{name!r}: min, max, mode and discrete percentiles release one person's own "
            "value; use a quantile (median, quantile_cont) or a mean"
        )
    if isinstance(value, exp.AggFunc):
        raise ModelRefused(
            f"{name!r}: {value.sql_name().lower()} is not a measure; use count(DISTINCT "
            "patient_id), sum, avg, median or quantile_cont"
        )
    raise ModelRefused(
        f"{name!r}: arithmetic on aggregates is not released; output the measures "
        "themselves and compute rates or differences from the released cells"
    )


def _quantile(value: exp.Expr, name: str) -> tuple[MeasureKind, exp.Expr, float]:
    argument: exp.Expr | None = None
    fraction: exp.Expr | None = None
    if isinstance(value, exp.WithinGroup):
        inner, order = value.this, value.expression
        if isinstance(inner, exp.PercentileCont) and isinstance(order, exp.Order):
            fraction = inner.this
            argument = order.expressions[0].this if order.expressions else None
    else:
        argument = value.this
        fraction = value.args.get("quantile") or value.args.get("expression")
    if argument is None or not isinstance(fraction, exp.Literal) or fraction.is_string:
        raise ModelRefused(f"{name!r}: write quantile_cont(value, 0.25) with a number for q")
    return MeasureKind.QUANTILE, argument, float(fraction.this)


def _population(select: exp.Select, columns: list[exp.Expr]) -> exp.Select:
    population = select.copy()
    for clause in ("group", "order", "having", "limit", "offset", "qualify", "distinct"):
        population.set(clause, None)
    population.set("expressions", [c.copy() for c in columns])
    return population
