"""Totality: a population query rewritten so that no value can make it fail.

An error that happens only for some values is an oracle: a query that fails when a fact about
one person is true, and runs when it is false, answers a yes/no question about them whatever
the output checks do. So every expression that may fail on some values yields NULL for that
row instead: casts become TRY_CAST; integer division and modulo by zero give NULL; expressions
that may fail and hold no aggregate, window or subquery are wrapped in DuckDB's TRY; arithmetic
around aggregates runs in DOUBLE (no overflow). Spark runs with ANSI mode off, where the same
failures give NULL, so its SQL has no TRY.
"""

from __future__ import annotations

from sqlglot import exp

from confide.tre.guard import QueryRefused

# Functions whose result is defined for every input of the right types (so they need no TRY).
_TOTAL_FUNCTIONS = (
    exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.Round,
    exp.Floor, exp.Ceil, exp.Sign, exp.Ln, exp.Log, exp.Exp, exp.Sqrt, exp.Pow, exp.Lower,
    exp.Upper, exp.Length, exp.Substring, exp.Left, exp.Right, exp.Trim, exp.Concat,
    exp.Replace, exp.StartsWith, exp.Year, exp.Month, exp.Day, exp.Quarter, exp.Week,
    exp.DayOfWeek, exp.DayOfYear, exp.Extract, exp.LastDay, exp.ArrayContains, exp.ArraySize,
    exp.TryCast, exp.Try, exp.Div,
)  # fmt: skip
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.IntDiv, exp.Mod, exp.Neg)
_NESTED = (exp.AggFunc, exp.Window, exp.Subquery, exp.Select, exp.Exists)


class NotTotal(QueryRefused):
    """A fallible function is applied where it cannot be made total; says what to do."""


def make_total(tree: exp.Expr) -> exp.Expr:
    """Rewrite ``tree`` so no value can make it fail: casts become TRY_CAST, and each
    expression that may fail on some values and holds no aggregate, window or subquery is
    wrapped in TRY (NULL for that row); arithmetic around aggregates runs in DOUBLE, and
    integer division or modulo by zero gives NULL."""
    for node in list(tree.find_all(exp.Cast)):
        if not isinstance(node, exp.TryCast):
            node.replace(exp.TryCast(this=node.this, to=node.to))
    for operation in list(tree.find_all(exp.IntDiv, exp.Mod)):
        divisor = operation.expression
        operation.set("expression", exp.func("NULLIF", divisor, exp.Literal.number(0)))
    _wrap(tree)
    return tree


def _wrap(node: exp.Expr) -> None:
    """Wrap maximal fallible subtrees that TRY can hold; recurse into the rest."""
    for child in list(node.iter_expressions()):
        if _candidate(child) and not child.find(*_NESTED) and _fallible(child):
            child.replace(exp.Try(this=child.copy()))
            continue
        if isinstance(child, exp.Add | exp.Sub | exp.Mul) and child.find(*_NESTED):
            for side in ("this", "expression"):
                operand = child.args.get(side)
                if operand is not None and not isinstance(operand, exp.Literal):
                    double = exp.DataType.build("DOUBLE")
                    operand.replace(exp.TryCast(this=operand.copy(), to=double))
        if isinstance(child, exp.Func) and child.find(*_NESTED) and _fallible_function(child):
            raise NotTotal(
                f"{child.sql_name()} cannot be applied to an aggregate or subquery result in "
                "a population query; apply it to the values inside the aggregate"
            )
        _wrap(child)


_NOT_WRAPPED = (
    exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Star, exp.And, exp.Or, exp.Paren,
    exp.Alias, exp.Window, exp.Ordered, exp.Try, exp.TryCast,
)  # fmt: skip


def _candidate(node: exp.Expr) -> bool:
    """A value position TRY may wrap (not a clause, a name, a type or a conjunction, whose
    parts are wrapped one by one so patient_id joins stay plain equalities)."""
    if isinstance(node.parent, exp.Window) and node.arg_key == "this":
        return False  # the window's own function: TRY cannot hold it
    return isinstance(node, exp.Condition) and not isinstance(node, _NOT_WRAPPED)


def _fallible(node: exp.Expr) -> bool:
    return any(
        isinstance(n, _ARITHMETIC) or (isinstance(n, exp.Func) and _fallible_function(n))
        for n in node.walk()
    )


def _fallible_function(node: exp.Func) -> bool:
    if isinstance(node, (exp.AggFunc, exp.Window, *_ARITHMETIC)):
        return False
    if isinstance(node, exp.Binary | exp.Not | exp.Is | exp.In | exp.Between | exp.Exists):
        return False
    return not isinstance(node, _TOTAL_FUNCTIONS)


def without_try(tree: exp.Expr) -> exp.Expr:
    """The tree for engines without TRY (Spark runs with ANSI mode off: failures give NULL)."""
    copy = tree.copy()
    for node in list(copy.find_all(exp.Try)):
        node.replace(node.this)
    return copy
