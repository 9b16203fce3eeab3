"""Contributor counting: rewrite a checked query so every output cell carries how many distinct
patients contributed to it, computed by the service itself (never from the researcher's counts).

Supported shape (anything else is refused or held for review, with the reason):

* the outermost query is one SELECT that aggregates: it has GROUP BY, or aggregate functions
  over the whole input (one group);
* every source in its FROM/JOIN carries the patient identifier: a view, or a CTE/subquery that
  selects ``patient_id`` (it is added automatically to a row-level CTE/subquery, or to one
  grouped by ``patient_id``);
* all those sources are joined on ``patient_id`` equality (ON, USING or WHERE);
* aggregates are COUNT, COUNT_IF, SUM, AVG, STDDEV/VARIANCE, BOOL_AND/OR (with FILTER allowed).

For each group the rewrite adds ``__contributors`` = COUNT(DISTINCT patient_id); for each
aggregate column it adds ``__contributors_<i>`` counting only the patients whose rows reach that
aggregate (non-null argument, the FILTER condition, and for SUM/AVG a non-zero value: so
``SUM(CASE WHEN x THEN 1 ELSE 0 END)`` is counted by the people with ``x``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope

from confide.tre.guard import PATIENT_COLUMN, CheckedQuery, QueryRefused

GROUP_CONTRIBUTORS = "__contributors"
ColumnKind = Literal["key", "count", "value"]

_COUNTED_AGGREGATES = (exp.Count, exp.CountIf, exp.Sum, exp.Avg, exp.Stddev, exp.StddevSamp,
                       exp.StddevPop, exp.Variance, exp.VariancePop, exp.LogicalAnd,
                       exp.LogicalOr)  # fmt: skip
_INDIVIDUAL_VALUE_AGGREGATES = (exp.Min, exp.Max, exp.Median, exp.PercentileCont,
                                exp.PercentileDisc, exp.Mode)  # fmt: skip


@dataclass(frozen=True)
class OutputColumn:
    """One visible output column: what kind it is and which hidden column counts its cells."""

    name: str
    kind: ColumnKind
    contributors: str


@dataclass(frozen=True)
class CountingPlan:
    """The SQL to run and how to read its hidden contributor columns.

    ``held_reason`` is set when the query can run but its contributors cannot be counted; the
    output then goes to review instead of being released."""

    sql: str
    columns: tuple[OutputColumn, ...]
    hidden: tuple[str, ...]
    held_reason: str | None = None


class _Uncountable(Exception):
    """Contributors cannot be derived safely; the message says why (held for review)."""


def plan_contributors(checked: CheckedQuery, allowed: Mapping[str, set[str]]) -> CountingPlan:
    """Rewrite ``checked`` to carry contributor counts, refuse row-level outputs, or hold."""
    tree = checked.tree.copy()
    if isinstance(tree, exp.SetOperation):
        return _held(checked, "the output combines several SELECTs (UNION/INTERSECT/EXCEPT)")
    assert isinstance(tree, exp.Select)
    if _aggregated_only_inside(tree):
        _refuse_patient_columns(tree)
        return _held(
            checked,
            "the aggregation happens inside a subquery or CTE; aggregate in the outermost SELECT",
        )
    _refuse_row_level(tree)
    try:
        return _rewrite(tree, allowed)
    except _Uncountable as why:
        return _held(checked, str(why))


def _held(checked: CheckedQuery, reason: str) -> CountingPlan:
    tree = checked.tree
    names = tree.named_selects
    columns = tuple(
        OutputColumn(name, _kind_of(sel), "") for name, sel in zip(names, tree.selects, strict=True)
    )
    return CountingPlan(
        sql=checked.sql,
        columns=columns,
        hidden=(),
        held_reason=f"contributors cannot be counted automatically: {reason}",
    )


# -- row-level outputs -------------------------------------------------------------------------


def _outside_aggregates(node: exp.Expression) -> list[exp.Column]:
    """Columns whose values appear as such in the output (not aggregated, not in a subquery)."""
    return [
        column
        for column in node.find_all(exp.Column)
        if column.find_ancestor(exp.AggFunc, exp.Subquery) is None
    ]


def _aggregated_only_inside(select: exp.Select) -> bool:
    top = bool(select.args.get("group")) or any(_aggregates(p) for p in select.selects)
    return not top and select.find(exp.AggFunc) is not None


def _refuse_patient_columns(select: exp.Select) -> None:
    for projection in select.selects:
        for column in _outside_aggregates(projection):
            if column.name.lower() == PATIENT_COLUMN:
                raise QueryRefused(
                    "row-per-patient outputs are not released: the output includes patient_id"
                )


def _refuse_row_level(select: exp.Select) -> None:
    _refuse_patient_columns(select)
    group = select.args.get("group")
    if group:
        for column in group.find_all(exp.Column):
            if column.name.lower() == PATIENT_COLUMN and not column.find_ancestor(exp.AggFunc):
                raise QueryRefused(
                    "row-per-patient outputs are not released: the output is grouped by patient_id"
                )
    has_aggregate = any(_aggregates(p) for p in select.selects)
    if not group and not has_aggregate:
        raise QueryRefused(
            "row-level outputs are not released: aggregate the rows (COUNT, SUM, AVG ...) "
            "with GROUP BY"
        )


def _aggregates(node: exp.Expression) -> list[exp.AggFunc]:
    """Aggregates computed by this SELECT (not those inside subqueries or windows)."""
    found = []
    for agg in node.find_all(exp.AggFunc):
        if agg.find_ancestor(exp.Subquery, exp.Window) is None:
            found.append(agg)
    return found


def _kind_of(projection: exp.Expression) -> ColumnKind:
    inner = projection.unalias()
    while isinstance(inner, exp.Cast | exp.Paren):
        inner = inner.this
    if isinstance(inner, exp.Filter):
        inner = inner.this
    if isinstance(inner, exp.Count | exp.CountIf):
        return "count"
    if isinstance(inner, exp.Sum) and _is_indicator(inner.this):
        return "count"
    return "value" if _aggregates(projection) else "key"


def _is_indicator(node: exp.Expression) -> bool:
    """True for CASE/IF expressions whose every result is the literal 0, 1 or NULL."""
    if not isinstance(node, exp.Case | exp.If):
        return False
    results = [node.args.get("true"), node.args.get("false")]
    if isinstance(node, exp.Case):
        results = [w.args.get("true") for w in node.args.get("ifs") or []]
        results.append(node.args.get("default"))
    return all(
        r is None
        or isinstance(r, exp.Null)
        or (isinstance(r, exp.Literal) and not r.is_string and r.this in ("0", "1"))
        for r in results
    )


# -- the rewrite -----------------------------------------------------------------------------


def _rewrite(select: exp.Select, allowed: Mapping[str, set[str]]) -> CountingPlan:
    _refuse_uncountable_top(select)
    scope = build_scope(select)
    assert scope is not None
    pid_columns = _source_patient_columns(scope, allowed)
    _require_joined_on_patient(select, scope, pid_columns)
    # With inner joins only, every source's patient_id is equal (and not NULL) on every row,
    # since each source is linked to the first by patient_id equality: one column will do.
    people = (
        pid_columns[0].copy()
        if len(pid_columns) == 1 or _inner_joins_only(select)
        else exp.func("COALESCE", *(c.copy() for c in pid_columns))
    )
    hidden = [GROUP_CONTRIBUTORS]
    group_count = exp.Count(this=exp.Distinct(expressions=[people.copy()]))
    additions: list[exp.Expression] = [exp.alias_(group_count, GROUP_CONTRIBUTORS)]
    # Each distinct counter is computed once: counting distinct people is the costly part.
    names_of = {group_count.sql(dialect="duckdb"): GROUP_CONTRIBUTORS}
    columns: list[OutputColumn] = []
    for index, projection in enumerate(list(select.selects)):
        kind = _kind_of(projection)
        aggregates = _aggregates(projection)
        if not aggregates:
            columns.append(OutputColumn(projection.alias_or_name, kind, GROUP_CONTRIBUTORS))
            continue
        counts = [_contributors_of(agg, people) for agg in aggregates]
        counter = counts[0] if len(counts) == 1 else exp.func("LEAST", *counts)
        key = counter.sql(dialect="duckdb")
        name = names_of.get(key)
        if name is None:
            name = names_of[key] = f"{GROUP_CONTRIBUTORS}_{index}"
            hidden.append(name)
            additions.append(exp.alias_(counter, name))
        columns.append(OutputColumn(projection.alias_or_name, kind, name))
    select.select(*additions, copy=False)
    return CountingPlan(
        sql=select.sql(dialect="duckdb", comments=False),
        columns=tuple(columns),
        hidden=tuple(hidden),
    )


def _inner_joins_only(select: exp.Select) -> bool:
    for join in select.args.get("joins") or []:
        kind = (join.args.get("kind") or "").upper()
        if join.args.get("side") or kind not in ("", "INNER", "CROSS"):
            return False
    return True


def _refuse_uncountable_top(select: exp.Select) -> None:
    if select.args.get("distinct"):
        raise _Uncountable("SELECT DISTINCT on an aggregated output")
    group = select.args.get("group")
    if group and any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets")):
        raise _Uncountable("ROLLUP, CUBE and GROUPING SETS add total rows")
    for projection in select.selects:
        if projection.find(exp.Window):
            raise _Uncountable(f"window function in output column {projection.alias_or_name!r}")
        if projection.find(exp.Subquery, exp.Select):
            raise _Uncountable(f"subquery in output column {projection.alias_or_name!r}")
        for agg in _aggregates(projection):
            if isinstance(agg, _INDIVIDUAL_VALUE_AGGREGATES):
                raise _Uncountable(
                    f"{agg.sql_name()} in output column {projection.alias_or_name!r} "
                    "releases a single person's value"
                )
            if not isinstance(agg, _COUNTED_AGGREGATES):
                raise _Uncountable(f"aggregate {agg.sql_name()} is not supported")


def _contributors_of(agg: exp.AggFunc, people: exp.Expression) -> exp.Expression:
    """COUNT(DISTINCT people) over the rows whose values reach ``agg``."""
    conditions: list[exp.Expression] = []
    parent = agg.parent
    if isinstance(parent, exp.Filter):
        where = parent.expression
        conditions.append(where.this.copy() if isinstance(where, exp.Where) else where.copy())
    argument = agg.this
    if isinstance(agg, exp.CountIf):
        conditions.append(argument.copy())
    elif isinstance(argument, exp.Distinct):
        # COUNT(DISTINCT people) skips NULL people already: only other arguments need a test.
        conditions.extend(
            e.copy().is_(exp.null()).not_() for e in argument.expressions if e != people
        )
    elif argument is not None and not isinstance(argument, exp.Star):
        conditions.append(argument.copy().is_(exp.null()).not_())
        if isinstance(agg, exp.Sum | exp.Avg):
            as_number = exp.cast(argument.copy(), "DOUBLE")
            conditions.append(exp.NEQ(this=as_number, expression=exp.Literal.number(0)))
    count = exp.Count(this=exp.Distinct(expressions=[people.copy()]))
    if not conditions:
        return count
    return exp.Filter(this=count, expression=exp.Where(this=exp.and_(*conditions)))


# -- where patient_id comes from --------------------------------------------------------------


def _ordered_sources(select: exp.Select) -> list[str]:
    names = []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        names.append(from_.this.alias_or_name)
    names.extend(join.this.alias_or_name for join in select.args.get("joins") or [])
    return names


def _source_patient_columns(scope: Scope, allowed: Mapping[str, set[str]]) -> list[exp.Column]:
    columns = []
    for alias in _ordered_sources(scope.expression):
        source = scope.sources.get(alias)
        if isinstance(source, exp.Table):
            if PATIENT_COLUMN not in allowed.get(source.name.lower(), set()):
                raise _Uncountable(f"the view {source.name!r} has no patient_id")
        elif isinstance(source, Scope):
            _ensure_patient_column(source, alias, allowed)
        else:
            raise _Uncountable(f"the source {alias!r} is not a view, CTE or subquery")
        columns.append(exp.column(PATIENT_COLUMN, table=alias, quoted=True))
    if not columns:
        raise _Uncountable("the query reads no view")
    return columns


def _ensure_patient_column(scope: Scope, alias: str, allowed: Mapping[str, set[str]]) -> None:
    """Make the CTE/subquery behind ``scope`` output the real patient_id, or explain why not."""
    query = scope.expression
    if not isinstance(query, exp.Select):
        if not _union_carries_patient(scope, allowed):
            raise _Uncountable(f"{alias!r} combines SELECTs without patient_id in each")
        return
    for projection in query.selects:
        if projection.alias_or_name.lower() == PATIENT_COLUMN:
            inner = projection.unalias()
            if not (isinstance(inner, exp.Column) and inner.name.lower() == PATIENT_COLUMN):
                raise _Uncountable(f"the column patient_id of {alias!r} is not the patient")
            _source_patient_columns_for(scope, inner.table, allowed, alias)
            return
    group = query.args.get("group")
    aggregated = group is not None or any(_aggregates(p) for p in query.selects)
    if query.args.get("distinct"):
        raise _Uncountable(f"{alias!r} uses SELECT DISTINCT without patient_id")
    if aggregated:
        keys = [
            c for c in (group.find_all(exp.Column) if group else [])
            if c.name.lower() == PATIENT_COLUMN
        ]  # fmt: skip
        if not keys:
            raise _Uncountable(f"{alias!r} aggregates across patients")
        key = keys[0]
        _source_patient_columns_for(scope, key.table, allowed, alias)
        query.select(exp.alias_(key.copy(), PATIENT_COLUMN, quoted=True), copy=False)
        return
    inner_columns = _source_patient_columns(scope, allowed)
    query.select(exp.alias_(inner_columns[0], PATIENT_COLUMN, quoted=True), copy=False)


def _source_patient_columns_for(
    scope: Scope, table_alias: str, allowed: Mapping[str, set[str]], alias: str
) -> None:
    source = scope.sources.get(table_alias)
    if isinstance(source, exp.Table):
        if PATIENT_COLUMN not in allowed.get(source.name.lower(), set()):
            raise _Uncountable(f"the view {source.name!r} has no patient_id")
    elif isinstance(source, Scope):
        _ensure_patient_column(source, table_alias, allowed)
    else:
        raise _Uncountable(f"patient_id in {alias!r} cannot be traced to a view")


def _union_carries_patient(scope: Scope, allowed: Mapping[str, set[str]]) -> bool:
    names = [n.lower() for n in scope.expression.named_selects]
    if PATIENT_COLUMN not in names:
        return False
    position = names.index(PATIENT_COLUMN)
    for branch in scope.union_scopes:
        query = branch.expression
        if isinstance(query, exp.SetOperation):
            if not _union_carries_patient(branch, allowed):
                return False
            continue
        inner = query.selects[position].unalias()
        if not (isinstance(inner, exp.Column) and inner.name.lower() == PATIENT_COLUMN):
            return False
        try:
            _source_patient_columns_for(branch, inner.table, allowed, "a UNION branch")
        except _Uncountable:
            return False
    return True


def _require_joined_on_patient(
    select: exp.Select, scope: Scope, pid_columns: list[exp.Column]
) -> None:
    """Every source must be linked to the first by patient_id equality (ON/USING/WHERE)."""
    aliases = _ordered_sources(select)
    parent = {a: a for a in aliases}

    def find(a: str) -> str:
        while parent[a] != a:
            a = parent[a]
        return a

    conditions = [j.args.get("on") for j in select.args.get("joins") or []]
    where = select.args.get("where")
    conditions.append(where.this if where is not None else None)
    for condition in conditions:
        if condition is None:
            continue
        for conjunct in condition.flatten() if isinstance(condition, exp.And) else [condition]:
            if not isinstance(conjunct, exp.EQ):
                continue
            left, right = conjunct.this, conjunct.expression
            if (
                isinstance(left, exp.Column)
                and isinstance(right, exp.Column)
                and left.name.lower() == PATIENT_COLUMN == right.name.lower()
                and left.table in parent
                and right.table in parent
            ):
                parent[find(left.table)] = find(right.table)
    root = find(aliases[0])
    for alias in aliases[1:]:
        if find(alias) != root:
            raise _Uncountable(f"{alias!r} is not joined to {aliases[0]!r} on patient_id")
