"""Properties of the query model, over random populations and random population queries.

1. Released keys only ever come from groups of at least the threshold of people, counted here
   independently of the TRE's own aggregation (by running the population query as it stands
   and counting in Python).
2. Adding or removing one person changes no released cell by more than the documented bound of
   one person's effect (the cell-key method's guarantee; see docs/researchers.md).
3. The same query on the same data gives the same answer (no averaging of repeats).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tre_sandbox import SANDBOX_SCHEMAS, Population, answer, event, person

from confide.tre.model import MeasureKind
from confide.tre.rules import RULE_SETS

RULES = RULE_SETS["acro"]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DIMENSIONS = {
    "sex": "p.sex",
    "area": "p.area",
    "decade": "CAST(p.birth_year // 10 * 10 AS VARCHAR)",
    "code": "e.code",
}
FILTERS = [
    "p.birth_year < 1970",
    "p.area IN ('A', 'B')",
    "e.code = 'X'",
    "e.value > 50",
    "p.sex = 'f' AND p.birth_year > 1950",
]


@st.composite
def populations(draw: Any) -> Population:
    size = draw(st.integers(min_value=15, max_value=120))
    population = Population()
    for i in range(size):
        pid = f"q{i:04d}"
        population.patients.append(
            person(
                pid,
                draw(st.integers(min_value=1930, max_value=2005)),
                draw(st.sampled_from(["f", "m"])),
                draw(st.sampled_from(["A", "B", "C", "D"])),
            )
        )
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            population.events.append(
                event(
                    pid,
                    draw(st.sampled_from(["X", "Y", "Z"])),
                    date(2020, 1, 1),
                    float(draw(st.integers(min_value=0, max_value=100))),
                )
            )
    return population


@st.composite
def queries(draw: Any) -> dict[str, Any]:
    dims = draw(st.lists(st.sampled_from(sorted(DIMENSIONS)), max_size=2, unique=True))
    events = "code" in dims or draw(st.booleans())
    where = draw(st.sampled_from([None, *FILTERS]))
    if where and ("e." in where) and not events:
        events = True
    columns = ["p.patient_id"] + [f"{DIMENSIONS[d]} AS {d}" for d in dims]
    measures: list[dict[str, Any]] = [{"kind": "count", "name": "n"}]
    if draw(st.booleans()):
        flag = draw(st.sampled_from(FILTERS[:2] + FILTERS[4:]))
        columns.append(f"{flag} AS flag")
        measures.append({"kind": "count", "name": "flagged", "column": "flag"})
    if events and draw(st.booleans()):
        columns.append("e.value AS value")
        kind = draw(st.sampled_from(["sum", "mean"]))
        measures.append({"kind": kind, "name": "v", "column": "value", "bounds": [0, 100]})
    sql = f"SELECT {', '.join(columns)} FROM patients p"
    if events:
        sql += " JOIN events e ON e.patient_id = p.patient_id"
    if where:
        sql += f" WHERE {where}"
    return {
        "population": sql,
        "dimensions": dims,
        "measures": measures,
        "totals": bool(dims) and draw(st.booleans()),
    }


def _people_per_group(population: Population, definition: dict[str, Any]) -> dict[tuple, int]:
    """Each group's people, counted from the population query's own rows (not the TRE's)."""
    con = duckdb.connect()
    for name, schema in SANDBOX_SCHEMAS.items():
        con.register(name, pa.Table.from_pylist(getattr(population, name), schema=schema))
    rows = con.execute(definition["population"]).fetchall()
    names = [d[0] for d in con.description]
    con.close()
    dims = definition["dimensions"]
    groups: dict[tuple, set[str]] = defaultdict(set)
    for row in rows:
        record = dict(zip(names, row, strict=True))
        if record["patient_id"] is None:
            continue
        keys = tuple(None if record[d] is None else str(record[d]) for d in dims)
        groups[keys].add(record["patient_id"])
        if definition["totals"]:
            for i in range(len(dims)):
                partial = tuple("(all)" if j == i else k for j, k in enumerate(keys))
                groups[partial].add(record["patient_id"])
            groups[tuple("(all)" for _ in dims)].add(record["patient_id"])
    return {k: len(v) for k, v in groups.items()}


def _key(row: dict[str, Any], dims: list[str]) -> tuple:
    return tuple(row[d] for d in dims)


@SETTINGS
@given(population=populations(), definition=queries())
def test_released_keys_come_only_from_groups_of_the_threshold(
    population: Population, definition: dict[str, Any]
) -> None:
    result = answer(population, definition)
    assert result.status in ("released", "held_for_review"), result.reason
    counted = _people_per_group(population, definition)
    dims = definition["dimensions"]
    measures = [m["name"] for m in definition["measures"]]
    for row in result.output.rows if result.output else []:
        if all(row[m] is None for m in measures) and all(row[d] == "(all)" for d in dims):
            continue  # a total's row is always there; suppressed, it says nothing
        key = _key(row, dims)
        assert counted.get(key, 0) >= RULES.threshold, (key, counted.get(key))


def _bound(kind: MeasureKind, people: int) -> float:
    width = 100.0
    noise = 2 * RULES.value_noise * width
    if kind is MeasureKind.COUNT:
        return RULES.count_bound
    if kind is MeasureKind.SUM:
        return 100.0 + noise
    return (width + noise) / max(1, people - 1) + 1e-9


@SETTINGS
@given(population=populations(), definition=queries(), data=st.data())
def test_one_person_more_or_fewer_moves_no_cell_beyond_the_bound(
    population: Population, definition: dict[str, Any], data: Any
) -> None:
    leaving = data.draw(st.sampled_from([p["patient_id"] for p in population.patients]))
    before = answer(population, definition)
    after = answer(population.without(leaving), definition)
    if before.output is None or after.output is None:
        return
    dims = definition["dimensions"]
    kinds = {m["name"]: MeasureKind(m["kind"]) for m in definition["measures"]}
    people = {(c.row, c.measure): c.people for c in before.output.released}
    rows_after = {_key(r, dims): r for r in after.output.rows}
    for index, row in enumerate(before.output.rows):
        other = rows_after.get(_key(row, dims))
        if other is None:
            continue
        for name, kind in kinds.items():
            if row[name] is None or other[name] is None:
                continue
            bound = _bound(kind, people.get((index, name), RULES.threshold))
            assert abs(row[name] - other[name]) <= bound, (name, row[name], other[name])


@SETTINGS
@given(population=populations(), definition=queries())
def test_the_same_query_always_gives_the_same_answer(
    population: Population, definition: dict[str, Any]
) -> None:
    first, again = answer(population, definition), answer(population, definition)
    assert first.visible() == again.visible()
