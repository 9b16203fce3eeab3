"""Stage 1: proves, on the syntax tree, that a population query is person-level.

A researcher's population query (already accepted by :mod:`confide.tre.guard`: one read-only
SELECT over the project's views and allowed functions) is accepted here only if every row it
yields belongs to one patient and is computed from that patient's own rows:

* every source (view, CTE, subquery) is itself person-level and carries its ``patient_id``;
* sources are combined only by ``JOIN``/``LEFT JOIN``/``SEMI``/``ANTI`` joins whose condition
  includes ``a.patient_id = b.patient_id`` as a top-level conjunct (or ``USING (patient_id)``);
* aggregates run only in a SELECT grouped by its ``patient_id`` (or inside a subquery
  correlated on ``patient_id``, whose rows are one person's); windows are partitioned by
  ``patient_id``; ``LIMIT``/``OFFSET`` only inside such a correlated subquery;
* a subquery in an expression is either correlated on ``patient_id`` or is the set in
  ``patient_id IN (SELECT patient_id ...)``, itself person-level;
* ``patient_id`` is used only to link and group rows: in join, correlation and ``IN``
  conditions, ``GROUP BY``, ``PARTITION BY``, ``IS [NOT] NULL`` and the output's own
  ``patient_id`` column; never compared with a value, computed with or output twice;
* no table referenced as a value (``SELECT patients FROM patients``), no column lists on table
  aliases, no ``ROLLUP``/``CUBE``/``GROUPING SETS``.

The accepted tree is then made *total*: every expression that could fail on some values (a
cast, integer overflow, a division by zero, an impossible date) yields NULL for that row
instead of failing the query, so whether a query runs can never depend on a fact about
someone. The SQL that runs is regenerated from this tree for each engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope

from confide.tre.guard import PATIENT_COLUMN, CheckedQuery, QueryRefused
from confide.tre.totality import make_total, without_try

_Node = TypeVar("_Node", bound=exp.Expr)

MAX_DEPTH = 120


class NotPersonLevel(QueryRefused):
    """The population query mixes people's rows; the message says where and what to do."""


@dataclass(frozen=True)
class PersonLevelQuery:
    """A population query proven person-level: its SQL for each engine and its columns."""

    checked: CheckedQuery
    columns: tuple[str, ...]  # output names, patient_id included
    total: exp.Query = field(repr=False, compare=False)  # the tree that runs (see totality)
    sql: dict[str, str] = field(compare=False)  # dialect -> SQL that runs

    def sql_for(self, dialect: str) -> str:
        return self.sql[dialect]


_REFUSED_FUNCTIONS = {"lpad", "rpad"}  # a padded length taken from data can exhaust memory


def check_person_level(checked: CheckedQuery) -> PersonLevelQuery:
    """Accept ``checked`` as a population query, or raise :class:`NotPersonLevel`."""
    tree = checked.tree
    _check_depth(tree)
    _refuse_shapes(tree)
    root = build_scope(tree)
    if root is None:
        raise NotPersonLevel("the population query could not be analysed")
    analyser = _Analyser()
    analyser.query(root, fixed=False)
    names = tuple(n.lower() for n in tree.named_selects)
    if names.count(PATIENT_COLUMN) != 1:
        raise NotPersonLevel("the population query must output patient_id exactly once")
    if len(set(names)) != len(names):
        raise NotPersonLevel("the population query's output columns need distinct names")
    for name in names:
        if name.startswith("_col_"):
            raise NotPersonLevel(
                "every output column of the population query needs a name (… AS name)"
            )
    total = make_total(tree.copy())
    assert isinstance(total, exp.Query)
    return PersonLevelQuery(
        checked=checked,
        columns=tuple(tree.named_selects),
        total=total,
        sql={
            "duckdb": total.sql(dialect="duckdb", comments=False),
            "spark": without_try(total).sql(dialect="spark", comments=False),
        },
    )


# -- shapes refused anywhere ------------------------------------------------------------------


def _check_depth(tree: exp.Expr) -> None:
    stack: list[tuple[exp.Expr, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise NotPersonLevel(f"the query is nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def _refuse_shapes(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, exp.TableColumn):
            raise NotPersonLevel(
                f"{node.name!r} names a table or subquery, not a column: whole rows cannot be "
                "used as values"
            )
        if isinstance(node, exp.TableAlias) and node.args.get("columns"):
            raise NotPersonLevel(
                "column lists on table aliases (FROM events t(a, b, ...)) are not allowed: "
                "use the views' own column names"
            )
        if isinstance(node, exp.Cube | exp.Rollup | exp.GroupingSets):
            raise NotPersonLevel(
                "ROLLUP, CUBE and GROUPING SETS add rows across people; ask for totals instead"
            )
        if isinstance(node, exp.Anonymous) and str(node.name).lower() in _REFUSED_FUNCTIONS:
            raise NotPersonLevel(f"{node.name} is not allowed in population queries")
        if isinstance(node, exp.Pad):
            raise NotPersonLevel("lpad and rpad are not allowed in population queries")
        if isinstance(node, exp.Tuple) and not isinstance(node.parent, exp.In):
            raise NotPersonLevel(
                "row values ((a, b, ...)) are not allowed outside IN lists: output each "
                "column on its own"
            )
        if isinstance(node, exp.Struct | exp.Array) or (
            isinstance(node, exp.Anonymous) and str(node.name).lower() in ("row", "struct_pack")
        ):
            raise NotPersonLevel("structs, lists and row values are not allowed as values")


# -- the analysis ---------------------------------------------------------------------------------


@dataclass
class _Context:
    """What an analysed SELECT offers: its sources' aliases and its anchors (sources whose
    patient_id equals the person's on every row: the FROM source and inner-joined ones)."""

    anchors: set[str]
    sources: set[str]


class _Analyser:
    def __init__(self) -> None:
        self.done: set[int] = set()

    def query(self, scope: Scope, *, fixed: bool, outer: _Context | None = None) -> None:
        """Check one scope. ``fixed``: a subquery correlated on the person (its rows are
        one person's), so aggregates and LIMIT are allowed there."""
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            self._set_operation(scope, fixed=fixed)
            return
        if not isinstance(expression, exp.Select):
            raise NotPersonLevel(f"{type(expression).__name__} is not allowed here")
        context = self._sources(scope)
        self._clauses(expression, fixed=fixed)
        self._patient_uses(scope, context, outer)
        self._aggregates(expression, scope, context, fixed=fixed)
        self._windows(scope, context, fixed=fixed)
        self._subqueries(scope, context)
        if not fixed:
            self._output(expression, context)

    # sources and joins --------------------------------------------------------------------

    def _sources(self, scope: Scope) -> _Context:
        select = scope.expression
        from_ = select.args.get("from_") or select.args.get("from")
        if from_ is None:
            raise NotPersonLevel("a SELECT without FROM has no patient; read one of the views")
        first = _alias(from_.this)
        self._source(scope, first)
        anchors, seen = {first}, {first}
        for join in select.args.get("joins") or []:
            alias = _alias(join.this)
            self._source(scope, alias)
            inner = _join_kind(join)
            self._join_condition(join, alias, seen)
            seen.add(alias)
            if inner:
                anchors.add(alias)
        return _Context(anchors=anchors, sources=seen)

    def _source(self, scope: Scope, alias: str) -> None:
        source = scope.sources.get(alias)
        if isinstance(source, exp.Table):
            return
        if isinstance(source, Scope):
            if id(source) not in self.done:
                self.done.add(id(source))
                self.query(source, fixed=False)
            return
        raise NotPersonLevel(f"the source {alias!r} is not a view, CTE or subquery")

    def _join_condition(self, join: exp.Join, alias: str, seen: set[str]) -> None:
        using = join.args.get("using")
        if using:
            names = {str(u.name).lower() for u in using}
            if PATIENT_COLUMN not in names:
                raise _unlinked(alias)
            return
        on = join.args.get("on")
        if on is None:
            raise _unlinked(alias)
        for conjunct in _conjuncts(on):
            pair = _patient_pair(conjunct)
            if pair and alias in pair and (pair - {alias}) & seen:
                return
        raise _unlinked(alias)

    def _set_operation(self, scope: Scope, *, fixed: bool) -> None:
        positions: set[int] = set()
        for branch in scope.set_operation_scopes:
            branch_query = branch.expression
            if isinstance(branch_query, exp.Select):
                names = [n.lower() for n in branch_query.named_selects]
                if PATIENT_COLUMN in names:
                    positions.add(names.index(PATIENT_COLUMN))
                else:
                    positions.add(-1)
            self.query(branch, fixed=fixed)
        if len(positions) > 1:
            raise NotPersonLevel(
                "each part of a UNION, INTERSECT or EXCEPT must output patient_id in the same "
                "position"
            )

    # clauses ------------------------------------------------------------------------------

    def _clauses(self, select: exp.Select, *, fixed: bool) -> None:
        if not fixed and (select.args.get("limit") or select.args.get("offset")):
            raise NotPersonLevel(
                "LIMIT and OFFSET choose rows across people; they are allowed only inside a "
                "subquery correlated on patient_id"
            )
        if isinstance(select.args.get("distinct"), exp.Distinct) and select.args[
            "distinct"
        ].args.get("on"):
            raise NotPersonLevel(
                "DISTINCT ON is not allowed; use a window partitioned by patient_id"
            )

    # patient_id ---------------------------------------------------------------------------

    def _patient_uses(self, scope: Scope, context: _Context, outer: _Context | None) -> None:
        for column in _own_nodes(scope.expression, exp.Column):
            if column.name.lower() != PATIENT_COLUMN:
                continue
            if not _allowed_patient_use(column):
                raise NotPersonLevel(
                    "patient_id may only link rows (joins, correlated subqueries, "
                    "patient_id IN (SELECT patient_id ...)), group them (GROUP BY, PARTITION "
                    "BY), test for NULL or be output once as itself; here it is used as a value"
                )

    # aggregates and windows -------------------------------------------------------------

    def _aggregates(
        self, select: exp.Select, scope: Scope, context: _Context, *, fixed: bool
    ) -> None:
        aggregates = [
            a
            for a in _own_nodes(select, exp.AggFunc)
            if not isinstance(a.parent, exp.Window) and a.find_ancestor(exp.Window) is None
        ]
        group = select.args.get("group")
        if fixed:
            return
        if aggregates or group is not None:
            keys = group.expressions if group is not None else []
            if not any(_anchor_patient(k, context) for k in keys):
                raise NotPersonLevel(
                    "aggregates in the population query must be per person: GROUP BY "
                    "patient_id (of the FROM view), or aggregate in a subquery correlated on "
                    "patient_id"
                )

    def _windows(self, scope: Scope, context: _Context, *, fixed: bool) -> None:
        for window in _own_nodes(scope.expression, exp.Window):
            if fixed:
                continue
            partition = window.args.get("partition_by") or []
            if not any(_anchor_patient(p, context) for p in partition):
                raise NotPersonLevel(
                    "window functions must be PARTITION BY patient_id: a window over other "
                    "people's rows would mix their data into this person's row"
                )

    # subqueries ---------------------------------------------------------------------------

    def _subqueries(self, scope: Scope, context: _Context) -> None:
        for sub in scope.subquery_scopes:
            node = sub.expression
            holder = _holder(node)
            if isinstance(holder, exp.In) and _anchor_patient(holder.this, context):
                if sub.external_columns:
                    self._correlated(sub, context)
                else:
                    self.query(sub, fixed=False)
                    selects = node.named_selects if isinstance(node, exp.Query) else []
                    names = [n.lower() for n in selects]
                    if names != [PATIENT_COLUMN]:
                        raise NotPersonLevel(
                            "patient_id IN (SELECT ...) must select patient_id only"
                        )
                continue
            if holder is None or not isinstance(holder, exp.Exists | exp.In):
                _refuse_plain_scalar(node)
            self._correlated(sub, context)

    def _correlated(self, sub: Scope, context: _Context) -> None:
        query = sub.expression
        if not isinstance(query, exp.Select):
            raise NotPersonLevel(
                "a subquery in an expression must be one SELECT correlated on patient_id"
            )
        inner = self._sources(sub)
        where = query.args.get("where")
        linked = False
        for conjunct in _conjuncts(where.this) if where is not None else []:
            pair = _patient_pair(conjunct)
            if pair and pair & inner.anchors and pair & context.anchors:
                linked = True
        if not linked:
            raise NotPersonLevel(
                "a subquery in an expression must be correlated on the person: add "
                "WHERE <its view>.patient_id = <outer view>.patient_id (so it reads only "
                "that person's rows)"
            )
        self._clauses(query, fixed=True)
        self._patient_uses(sub, inner, context)
        self._windows(sub, inner, fixed=True)
        self._subqueries(sub, inner)

    # the output ---------------------------------------------------------------------------

    def _output(self, select: exp.Select, context: _Context) -> None:
        found = False
        for projection in select.selects:
            name = projection.alias_or_name.lower()
            if name != PATIENT_COLUMN:
                continue
            inner = projection.unalias()
            if not _anchor_patient(inner, context):
                raise NotPersonLevel(
                    "the patient_id output must be the patient_id of the FROM view (or of a "
                    "view joined to it with an inner join)"
                )
            found = True
        if not found:
            raise NotPersonLevel(
                "every SELECT of the population query must output patient_id (the person "
                "each row belongs to)"
            )


# -- helpers ----------------------------------------------------------------------------------


def _alias(node: exp.Expr) -> str:
    return str(node.alias_or_name)


def _join_kind(join: exp.Join) -> bool:
    """Whether the join is inner (its patient_id always equals the FROM view's); refuse kinds
    that could attach a row to nobody or to anybody."""
    side = str(join.args.get("side") or "").upper()
    kind = str(join.args.get("kind") or "").upper()
    if join.args.get("method"):
        raise NotPersonLevel(f"{join.args['method']} joins are not allowed")
    if side in ("RIGHT", "FULL") or kind in ("CROSS", "ASOF", "POSITIONAL", "NATURAL"):
        raise NotPersonLevel(
            f"{(side or kind).upper()} joins are not allowed in population queries: use JOIN "
            "or LEFT JOIN on patient_id"
        )
    if side == "LEFT" or kind in ("SEMI", "ANTI"):
        return False
    if kind in ("", "INNER", "OUTER"):
        return side == ""
    raise NotPersonLevel(f"{kind} joins are not allowed")


def _unlinked(alias: str) -> NotPersonLevel:
    return NotPersonLevel(
        f"{alias!r} must be joined on patient_id (JOIN {alias} ON {alias}.patient_id = "
        "<an earlier view>.patient_id): rows of different people must never meet"
    )


def _conjuncts(condition: exp.Expr) -> list[exp.Expr]:
    node = condition
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return [c for part in node.flatten() for c in _conjuncts(part)]
    return [node]


def _patient_pair(conjunct: exp.Expr) -> set[str] | None:
    """The two table aliases of ``a.patient_id = b.patient_id``, else None."""
    if not isinstance(conjunct, exp.EQ):
        return None
    left, right = conjunct.this, conjunct.expression
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
        return None
    if left.name.lower() != PATIENT_COLUMN or right.name.lower() != PATIENT_COLUMN:
        return None
    if not left.table or not right.table or left.table == right.table:
        return None
    return {left.table, right.table}


def _anchor_patient(node: exp.Expr, context: _Context) -> bool:
    node = node.unalias() if isinstance(node, exp.Alias) else node
    return (
        isinstance(node, exp.Column)
        and node.name.lower() == PATIENT_COLUMN
        and node.table in context.anchors
    )


def _own_nodes(root: exp.Expr, kind: type[_Node]) -> list[_Node]:
    """Nodes of ``kind`` in ``root``'s own SELECT, not inside nested subqueries or CTEs."""
    found = []
    stack = list(root.iter_expressions())
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Subquery | exp.Select | exp.SetOperation | exp.With | exp.CTE):
            continue
        if isinstance(node, kind):
            found.append(node)
        stack.extend(node.iter_expressions())
    return found


def _holder(query: exp.Expr) -> exp.Expr | None:
    """The expression a subquery stands in (IN, EXISTS, a scalar position)."""
    parent = query.parent
    while isinstance(parent, exp.Subquery | exp.Paren):
        parent = parent.parent
    return parent


def _refuse_plain_scalar(query: exp.Expr) -> None:
    """A subquery used as a value must give one value per person on every engine: one
    aggregate (max, min, count ...) and no GROUP BY, never a row that may not be unique."""
    if not isinstance(query, exp.Select) or len(query.selects) != 1:
        raise NotPersonLevel("a subquery used as a value must select exactly one value")
    value = query.selects[0].unalias()
    bare = [c for c in value.find_all(exp.Column) if c.find_ancestor(exp.AggFunc) is None]
    if query.args.get("group") or value.find(exp.AggFunc) is None or bare:
        raise NotPersonLevel(
            "a subquery used as a value must be one aggregate of the person's rows (for "
            "example (SELECT max(e.date) FROM events e WHERE e.patient_id = p.patient_id)), "
            "so it gives one value per person"
        )


def _allowed_patient_use(column: exp.Column) -> bool:
    parent = column.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    if isinstance(parent, exp.EQ):
        other = parent.expression if parent.this is column else parent.this
        return isinstance(other, exp.Column) and other.name.lower() == PATIENT_COLUMN
    if isinstance(parent, exp.In):
        return parent.this is column and parent.args.get("query") is not None
    if isinstance(parent, exp.Is):
        return isinstance(parent.expression, exp.Null)
    if isinstance(parent, exp.Not) and isinstance(parent.parent, exp.Is):
        return True
    if isinstance(parent, exp.Group):
        return True
    if isinstance(parent, exp.Window):
        return column in (parent.args.get("partition_by") or [])
    if isinstance(parent, exp.Alias):
        return parent.alias.lower() == PATIENT_COLUMN and isinstance(parent.parent, exp.Select)
    if isinstance(parent, exp.Select):
        return column in parent.expressions and column.alias_or_name.lower() == PATIENT_COLUMN
    return isinstance(parent, exp.Ordered)
