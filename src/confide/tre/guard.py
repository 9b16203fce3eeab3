"""The SQL guard: decides, before anything runs, whether a researcher's query may run.

A query is accepted only if it is one read-only SELECT (WITH, UNION, subqueries, window
functions and CASE are fine) that reads only the project's views and columns and calls only
functions on an allowlist. Everything is decided on the SQLGlot syntax tree, by allowlist:
node kinds and function names not listed below are refused, so a feature added to the engine
later is refused until someone decides it is safe. The SQL that runs is regenerated from the
checked tree (comments dropped, names qualified), so nothing the guard did not see can run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from confide.common.errors import InvalidInput

MAX_SQL_CHARS = 20_000


class _QuietFallback(logging.Filter):
    """SQLGlot logs unparseable statements (with their text) before parsing them as commands;
    the guard refuses those itself, so the log line is noise and may carry query text."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "contains unsupported syntax" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_QuietFallback())
PATIENT_COLUMN = "patient_id"
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class QueryRefused(InvalidInput):
    """The guard refused a query; the message says exactly what and why."""


@dataclass(frozen=True)
class CheckedQuery:
    """A query the guard accepted: ``sql`` is regenerated from the checked, qualified tree."""

    original: str
    sql: str
    tree: exp.Query = field(repr=False, compare=False)
    tables: frozenset[str]
    columns: frozenset[tuple[str, str]]
    dialect: str = "duckdb"


# -- allowlists ------------------------------------------------------------------------------

# Functions by SQLGlot expression key (known functions) or by lower-case name (others).
AGGREGATE_FUNCTIONS = frozenset(
    {
        "count", "countif", "count_if", "sum", "avg", "min", "max", "median", "stddev",
        "stddevsamp", "stddevpop", "variance", "variancepop", "var_samp", "var_pop",
        "stddev_samp", "stddev_pop", "logicaland", "logicalor", "bool_and", "bool_or",
        "percentilecont", "percentiledisc", "quantile_cont", "quantile_disc", "mode",
    }
)  # fmt: skip
WINDOW_FUNCTIONS = frozenset(
    {
        "rownumber", "row_number", "rank", "dense_rank", "denserank", "percent_rank",
        "percentrank", "cume_dist", "cumedist", "ntile", "lag", "lead", "firstvalue",
        "first_value", "lastvalue", "last_value", "nthvalue", "nth_value",
    }
)  # fmt: skip
SCALAR_FUNCTIONS = frozenset(
    {
        # conditionals and types
        "case", "if", "coalesce", "nullif", "greatest", "least", "cast", "trycast",
        "try_cast",
        # numbers
        "abs", "round", "floor", "ceil", "ceiling", "trunc", "sign", "ln", "log", "log10",
        "log2", "exp", "sqrt", "pow", "power", "mod",
        # text
        "lower", "upper", "length", "substring", "substr", "left", "right", "trim", "ltrim",
        "rtrim", "concat", "replace", "startswith", "starts_with", "endswith", "ends_with",
        "lpad", "rpad",
        # dates
        "datediff", "date_diff", "datesub", "dateadd", "date_add", "date_sub", "datetrunc",
        "date_trunc", "timestamptrunc", "extract", "year", "month", "day", "quarter",
        "week", "dayofweek", "dayofyear", "date_part", "datepart", "datefromparts",
        "make_date", "currentdate", "current_date", "todate", "to_date", "last_day",
        "lastday", "monthsbetween", "months_between", "timetostr", "strftime", "age",
        # lists (hospital episodes carry diagnosis and procedure lists)
        "arraycontains", "array_contains", "list_contains", "list_has", "arraysize",
        "array_length", "len",
    }
)  # fmt: skip
ALLOWED_FUNCTIONS = AGGREGATE_FUNCTIONS | WINDOW_FUNCTIONS | SCALAR_FUNCTIONS

# Function names refused with a specific reason (everything else not allowed is refused too).
_FILE_FUNCTIONS = (
    "read_", "parquet_", "glob", "sniff_csv", "iceberg_", "delta_scan", "csv_", "json_",
    "sqlite_scan", "postgres_", "mysql_", "http", "s3", "copy", "readcsv", "readparquet",
    "readjson", "readtext", "readblob",
)  # fmt: skip
_CATALOGUE_FUNCTIONS = (
    "duckdb_", "pragma_", "information_schema", "pg_", "sqlite_master", "current_setting",
    "getenv", "version", "current_schema", "current_database", "current_catalog", "which_",
    "currentschema", "currentcatalog", "currentuser", "current_user", "user",
    "sessionuser", "session_user", "test_all_types",
)  # fmt: skip
_EXPLOSIVE_FUNCTIONS = ("generate_series", "generateseries", "range", "repeat", "unnest",
                        "explode", "string_split", "regexp_split")  # fmt: skip
_DYNAMIC_FUNCTIONS = ("query", "query_table", "querytable", "eval", "exec")

# Node kinds allowed anywhere in a query (functions are checked separately by name).
_ALLOWED_NODES: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.With, exp.CTE, exp.TableAlias,
    exp.Subquery, exp.From, exp.Join, exp.Table, exp.Column, exp.Identifier, exp.Alias,
    exp.Star, exp.Literal, exp.Boolean, exp.Null, exp.Where, exp.Group, exp.Having,
    exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Window, exp.WindowSpec, exp.Qualify,
    exp.Distinct, exp.Paren, exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE,
    exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub,
    exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.DPipe, exp.DataType, exp.Interval,
    exp.Var, exp.Filter, exp.Tuple, exp.Exists, exp.Bracket, exp.Array, exp.IgnoreNulls,
    exp.RespectNulls, exp.NullSafeEQ, exp.NullSafeNEQ, exp.IsNullValue, exp.Dot,
    exp.DataTypeParam, exp.Cube, exp.Rollup, exp.GroupingSets, exp.Any, exp.All,
    exp.WithinGroup, exp.Column,
)  # fmt: skip

# Node kinds refused with a reason that says why (checked before the generic refusal).
_REFUSED_NODES: dict[type[exp.Expr], str] = {
    exp.Lambda: "lambda functions are not allowed",
    exp.Placeholder: "query parameters ('?', '$1') are not allowed; write the value in the query",
    exp.Parameter: "query parameters ('?', '$1') are not allowed; write the value in the query",
    exp.TableSample: "USING SAMPLE / TABLESAMPLE is not allowed: random samples make "
    "outputs unrepeatable and help differencing attacks",
    exp.Pivot: "PIVOT and UNPIVOT are not allowed; use CASE inside aggregates instead",
    exp.Columns: "COLUMNS(...) star expressions are not allowed; name the columns",
    exp.Lateral: "LATERAL joins are not allowed",
    exp.Into: "SELECT ... INTO creates a table and is not allowed",
}


# -- the check -------------------------------------------------------------------------------


def check_query(
    sql: str, allowed: Mapping[str, Iterable[str]], dialect: str = "duckdb"
) -> CheckedQuery:
    """Accept ``sql`` if it is one read-only SELECT over ``allowed`` (table -> columns), else
    raise ``QueryRefused`` saying exactly what was refused."""
    try:
        return _check(sql, allowed, dialect)
    except RecursionError:
        raise QueryRefused(
            "the query is nested too deeply to be checked; write it with fewer nested "
            "parentheses or subqueries"
        ) from None


def _check(sql: str, allowed: Mapping[str, Iterable[str]], dialect: str) -> CheckedQuery:
    allowed_map = {
        table.lower(): {column.lower() for column in cols} for table, cols in allowed.items()
    }
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"the query is longer than {MAX_SQL_CHARS} characters")
    statements = _parse(sql, dialect)
    if len(statements) != 1:
        raise QueryRefused(
            f"only one SELECT statement is allowed; found {len(statements)} statements"
        )
    tree = statements[0]
    _check_statement_kind(tree)
    assert isinstance(tree, exp.Query)
    _check_nodes(tree)
    _check_table_names(tree, allowed_map)
    qualified = _qualify(tree, allowed_map, dialect)
    tables, columns = _check_scopes(qualified, allowed_map)
    return CheckedQuery(
        original=sql,
        sql=qualified.sql(dialect="duckdb", comments=False),
        tree=qualified,
        tables=frozenset(tables),
        columns=frozenset(columns),
        dialect=dialect,
    )


def transpile(sql: str, dialect: str) -> str:
    """The accepted (DuckDB) SQL written for another engine, e.g. ``"spark"``."""
    return sqlglot.transpile(sql, read="duckdb", write=dialect)[0]


def _parse(sql: str, dialect: str) -> list[exp.Expr]:
    try:
        parsed = sqlglot.parse(sql, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = (
            f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        )
        detail = str(first.get("description") or "it is not valid SQL").rstrip(".")
        raise QueryRefused(f"the query could not be read{where}: {detail}") from None
    except TokenError as error:
        raise QueryRefused(f"the query could not be read: {error}") from None
    return [statement for statement in parsed if statement is not None]


def _check_statement_kind(tree: exp.Expr) -> None:
    if isinstance(tree, exp.Query):
        return
    if isinstance(tree, exp.Command):
        kind = str(tree.this).upper()
    elif isinstance(tree, exp.Column | exp.Identifier):
        kind = tree.sql().upper()
    else:
        kind = type(tree).__name__.upper()
    raise QueryRefused(f"only SELECT queries are allowed; this is a {kind} statement")


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql(dialect="duckdb").split("(")[0].strip().lower() or node.key


def _function_refusal(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith(_DYNAMIC_FUNCTIONS):
        return f"{name} runs SQL text dynamically and is not allowed"
    if lowered.startswith(_FILE_FUNCTIONS):
        return f"{name} is a file access function and is not allowed"
    if lowered.startswith(_CATALOGUE_FUNCTIONS):
        return f"{name} reads the system catalogue or settings and is not allowed"
    if lowered.startswith(_EXPLOSIVE_FUNCTIONS):
        return f"{name} can generate unbounded rows and is not allowed"
    return f"the function {name} is not on the list of allowed functions"


def _check_nodes(tree: exp.Expr) -> None:
    # Specific refusals first, so the reason names the feature rather than a side effect.
    for node in tree.walk():
        for kind, why in _REFUSED_NODES.items():
            if isinstance(node, kind):
                raise QueryRefused(why)
    for node in tree.walk():
        if isinstance(node, exp.With) and node.args.get("recursive"):
            raise QueryRefused(
                "recursive CTEs (WITH RECURSIVE) are not allowed: they can run without bound"
            )
        if isinstance(node, exp.Identifier):
            _check_identifier(node)
        if isinstance(node, exp.Table):
            _check_table_reference(node)
        if isinstance(node, _ALLOWED_NODES):
            continue
        if isinstance(node, exp.Func):
            name = str(node.name).lower() if isinstance(node, exp.Anonymous) else node.key
            if name not in ALLOWED_FUNCTIONS:
                raise QueryRefused(_function_refusal(_function_name(node)))
        else:
            raise QueryRefused(f"{_describe(node)} is not allowed in queries")


def _describe(node: exp.Expr) -> str:
    text = node.sql(dialect="duckdb")
    snippet = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(node).__name__} ({snippet})"


def _check_identifier(node: exp.Identifier) -> None:
    name = str(node.this)
    if not _NAME.match(name):
        raise QueryRefused(
            f"the name {name!r} is not allowed: names may use only the letters A-Z, digits "
            "and underscores"
        )
    if name.startswith("__"):
        raise QueryRefused(f"names starting with '__' are reserved ({name!r})")


def _check_table_reference(node: exp.Table) -> None:
    if not isinstance(node.this, exp.Identifier):
        inner = node.this
        if isinstance(inner, exp.Func):
            raise QueryRefused(
                _function_refusal(_function_name(inner))
                + " (table functions cannot be used in FROM)"
            )
        raise QueryRefused(f"{_describe(node)} cannot be used as a table")
    if any(mark in str(node.this.this) for mark in (".", "/", "\\", ":")):
        raise QueryRefused("file paths cannot be used as tables")
    if node.args.get("db") or node.args.get("catalog"):
        raise QueryRefused(
            f"qualified table names ({node.sql(dialect='duckdb')}) are not allowed; "
            "name the view only"
        )
    for key in ("version", "when", "changes", "laterals", "pivots", "hints"):
        if node.args.get(key):
            raise QueryRefused(f"{key} clauses on tables are not allowed")


def _cte_names(tree: exp.Expr) -> set[str]:
    return {str(cte.alias).lower() for cte in tree.find_all(exp.CTE)}


def _check_table_names(tree: exp.Expr, allowed: Mapping[str, set[str]]) -> None:
    ctes = _cte_names(tree)
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name not in allowed and name not in ctes:
            raise QueryRefused(_not_a_view(name, allowed))


def _not_a_view(name: str, allowed: Mapping[str, set[str]]) -> str:
    listing = ", ".join(sorted(allowed)) or "none"
    return f"the query reads table {name!r}, which is not one of this project's views ({listing})"


def _qualify(tree: exp.Expr, allowed: Mapping[str, set[str]], dialect: str) -> exp.Query:
    schema: dict[str, object] = {
        table: dict.fromkeys(sorted(cols), "TEXT") for table, cols in allowed.items()
    }
    try:
        qualified = qualify(
            tree.copy(),
            schema=schema,
            dialect=dialect,
            validate_qualify_columns=True,
            quote_identifiers=True,
            expand_stars=True,
        )
    except OptimizeError as error:
        text = str(error)
        match = re.search(r"Column '([^']+)' could not be resolved", text)
        if match:
            raise QueryRefused(
                f"the query uses column {match.group(1)!r}, which is not a column of the "
                "views it reads (or is not one this project may see)"
            ) from None
        raise QueryRefused(f"the query could not be checked: {text.splitlines()[0]}") from None
    assert isinstance(qualified, exp.Query)
    return qualified


def _check_scopes(
    tree: exp.Query, allowed: Mapping[str, set[str]]
) -> tuple[set[str], set[tuple[str, str]]]:
    """Every base table each scope reads must be a view; collect the (view, column) pairs."""
    tables: set[str] = set()
    columns: set[tuple[str, str]] = set()
    for scope in traverse_scope(tree):
        _check_scope_sources(scope, allowed, tables)
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table):
                columns.add((source.name.lower(), column.name.lower()))
    return tables, columns


def _check_scope_sources(scope: Scope, allowed: Mapping[str, set[str]], tables: set[str]) -> None:
    for source in scope.sources.values():
        if isinstance(source, exp.Table):
            name = source.name.lower()
            if name not in allowed:
                raise QueryRefused(_not_a_view(name, allowed))
            tables.add(name)
