"""One plan, every engine: the system's aggregation gives the same cells on DuckDB and on Spark
as a reference computed in plain Python from the population's rows.

The way ehrQL runs one spec suite on every engine: each case is a small population, a query
definition and the cells it must give. The reference reads the population query's own rows
(run as written) and aggregates them person by person, as the model says: a person counts
once per cell; a flag counts them if it is true on any of their rows; a sum takes each
person's total and a mean each person's mean, clamped to the bounds, with their record keys
summed for the cell key.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from tre_sandbox import (
    ALLOWED,
    SANDBOX_SCHEMAS,
    SECRET,
    Population,
    duckdb_views,
    event,
    person,
    spark_views,
)

from confide.tre.aggregation import KEYED, plan_aggregation
from confide.tre.cellkey import record_keys
from confide.tre.guard import check_query
from confide.tre.model import MeasureKind, QueryDefinition
from confide.tre.person_level import check_person_level
from confide.tre.runner import Limits, run_aggregation
from confide.tre.translate import read_query


def population() -> Population:
    made = Population()
    for i in range(60):
        pid = f"e{i:03d}"
        made.patients.append(person(pid, 1930 + i, "female" if i % 3 else "male", f"A{i % 4}"))
        for j in range(i % 4):
            made.events.append(event(pid, "X" if (i + j) % 2 else "Y", date(2020, 1 + j, 1),
                                     float((i * 7 + j * 13) % 90)))  # fmt: skip
    return made


CASES: dict[str, Any] = {
    "people by sex": "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY 1",
    "people by code, joined": (
        "SELECT e.code, count(DISTINCT p.patient_id) AS n FROM patients p "
        "JOIN events e ON e.patient_id = p.patient_id GROUP BY 1"
    ),
    "flag over rows": (
        "SELECT p.area, count(DISTINCT p.patient_id) FILTER (WHERE e.code = 'X') AS has_x "
        "FROM patients p JOIN events e ON e.patient_id = p.patient_id GROUP BY 1"
    ),
    "sum and mean per person": (
        "SELECT p.sex, sum(e.value) AS total, avg(e.value) AS mean FROM patients p "
        "JOIN events e ON e.patient_id = p.patient_id GROUP BY 1",
        {"total": (0.0, 150.0), "mean": (10.0, 60.0)},
    ),
    "bands and a domain with totals": {
        "population": "SELECT p.patient_id, p.birth_year, p.area FROM patients p",
        "dimensions": [
            {"column": "birth_year", "bands": [1950, 1970]},
            {"column": "area", "domain": ["A0", "A1"]},
        ],
        "measures": [{"kind": "count", "name": "n"}],
        "totals": True,
    },
    "nobody grouped": (
        "SELECT count(DISTINCT p.patient_id) AS n FROM patients p WHERE p.birth_year > 1960"
    ),
    "left join and a null key": (
        "SELECT e.code, count(DISTINCT p.patient_id) AS n FROM patients p "
        "LEFT JOIN events e ON e.patient_id = p.patient_id GROUP BY 1"
    ),
}


def definition_of(case: Any) -> QueryDefinition:
    query, bounds = case if isinstance(case, tuple) else (case, None)
    totals = isinstance(query, dict) and bool(query.get("totals"))
    return read_query(query, ALLOWED, bounds, totals=totals)


def _rows(made: Population, definition: QueryDefinition) -> list[dict[str, Any]]:
    con = duckdb.connect()
    for name, schema in SANDBOX_SCHEMAS.items():
        con.register(name, pa.Table.from_pylist(getattr(made, name), schema=schema))
    result = con.execute(definition.population)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _key(dimension: Any, value: Any) -> Any:
    if value is None:
        return "other" if dimension.domain is not None else None
    if dimension.bands is not None:
        labels = dimension.band_labels()
        for edge, label in zip(dimension.bands, labels, strict=False):
            if float(value) < edge:
                return label
        return labels[-1]
    text = str(value)
    if dimension.domain is not None and text not in dimension.domain:
        return "other"
    return text


def reference(made: Population, definition: QueryDefinition) -> list[dict[str, Any]]:
    """The cells, person by person, in plain Python."""
    dims = definition.dimensions
    rows = [r for r in _rows(made, definition) if r["patient_id"] is not None]
    full = (1 << len(dims)) - 1
    levels = list(range(full, -1, -1)) if definition.totals else [full]
    cells: dict[tuple, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        keys = [_key(d, row[d.column]) for d in dims]
        for level in levels:
            cell = (level, *[k if level >> i & 1 else None for i, k in enumerate(keys)])
            cells[cell][row["patient_id"]].append(row)

    def key_sum(people: Any) -> int:
        return sum(record_keys(SECRET, pid).rkey for pid in people)

    out = []
    for cell, persons in cells.items():
        figures: dict[str, Any] = {"__level": cell[0], "__n": len(persons), "__k": key_sum(persons)}
        figures.update({f"__d{i}": k for i, k in enumerate(cell[1:])})
        for j, measure in enumerate(definition.measures):
            if measure.kind is MeasureKind.COUNT:
                if measure.column is not None:
                    having = [
                        p for p, rs in persons.items() if any(r[measure.column] is True for r in rs)
                    ]
                    figures[f"__n{j}"], figures[f"__k{j}"] = len(having), key_sum(having)
                continue
            low, high = measure.bounds  # type: ignore[misc]
            each = {}
            for pid, person_rows in persons.items():
                numbers = [
                    float(r[measure.column]) for r in person_rows if r[measure.column] is not None
                ]
                if numbers:
                    raw = (
                        sum(numbers)
                        if measure.kind is MeasureKind.SUM
                        else sum(numbers) / len(numbers)
                    )
                    each[pid] = min(max(raw, low), high)
            figures[f"__n{j}"], figures[f"__k{j}"] = len(each), key_sum(each)
            figures[f"__s{j}"] = sum(each.values()) if each else None
        out.append(figures)
    return out


def _plain(name: str, value: Any) -> Any:
    """Counts and key sums as integers, values rounded: engines type them differently."""
    if value is None:
        return None
    if name.startswith(("__n", "__k")):
        return int(value)
    return round(float(value), 6) if isinstance(value, float) else value


def _comparable(cells: list[dict[str, Any]], fields: set[str]) -> list[tuple]:
    rows = [
        tuple(sorted((name, _plain(name, v)) for name, v in cell.items() if name in fields))
        for cell in cells
    ]
    return sorted(rows, key=repr)


def _engine_cells(
    made: Population, definition: QueryDefinition, engine: str, spark: Any
) -> list[dict[str, Any]]:
    population_query = check_person_level(check_query(definition.population, ALLOWED))
    plan = plan_aggregation(population_query, definition, dialect=engine)
    if engine == "duckdb":
        cells, _ = run_aggregation(duckdb_views(made), plan, Limits(), sketches=False)
        return cells.to_pylist()
    session = spark_views(spark, made)
    session.sql(plan.keyed).createOrReplaceTempView(KEYED)
    return session.sql(plan.cells).toArrow().to_pylist()


@pytest.fixture(params=["duckdb", "spark"])
def engine(request: pytest.FixtureRequest) -> tuple[str, Any]:
    if request.param == "spark":
        return "spark", request.getfixturevalue("spark")
    return "duckdb", None


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_engine_gives_the_reference_cells(name: str, engine: tuple[str, Any]) -> None:
    made = population()
    definition = definition_of(CASES[name])
    expected = reference(made, definition)
    got = _engine_cells(made, definition, *engine)
    fields = set().union(*(cell.keys() for cell in expected))
    assert _comparable(got, fields) == _comparable(expected, fields), name
