# ruff: noqa: E501  (the cases read best on one line each)
"""The query model: what a query may say. Definitions and their validation, aggregate SQL read
as a definition, the person-level check of populations, and populations made total."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tre_sandbox import ALLOWED, SANDBOX_SCHEMAS

from confide.common.errors import InvalidInput
from confide.tre.guard import QueryRefused, check_query
from confide.tre.model import (
    Dimension,
    MeasureKind,
    ModelRefused,
    definition_from_dict,
    parse_bounds,
)
from confide.tre.person_level import NotPersonLevel, check_person_level
from confide.tre.translate import definition_from_sql

# -- definitions -------------------------------------------------------------------------------


def test_a_definition_reads_from_json_like_data() -> None:
    definition = definition_from_dict(
        {
            "population": "SELECT patient_id, sex, birth_year FROM patients",
            "dimensions": ["sex", {"column": "birth_year", "name": "born", "bands": [1950, 1980]}],
            "measures": [
                {"kind": "count", "name": "n"},
                {
                    "kind": "quantile",
                    "name": "q",
                    "column": "birth_year",
                    "bounds": [1900, 2020],
                    "q": 0.9,
                },
            ],
            "totals": True,
        }
    )
    assert [d.name for d in definition.dimensions] == ["sex", "born"]
    assert definition.dimensions[1].band_labels() == ["<1950", "1950-1980", ">=1980"]
    assert definition.measures[1].kind is MeasureKind.QUANTILE
    assert definition_from_dict(definition.as_dict()) == definition


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (
            {"population": "", "measures": [{"kind": "count", "name": "n"}]},
            "population query is empty",
        ),
        ({"population": "x", "measures": []}, "at least one measure"),
        ({"population": "x", "measures": [{"kind": "max", "name": "m"}]}, "unknown measure kind"),
        (
            {"population": "x", "measures": [{"kind": "mean", "name": "m", "column": "v"}]},
            "needs bounds",
        ),
        (
            {
                "population": "x",
                "measures": [{"kind": "mean", "name": "m", "column": "v", "bounds": [5, 1]}],
            },
            "low < high",
        ),
        (
            {"population": "x", "measures": [{"kind": "count", "name": "patient_id"}]},
            "patient_id cannot be an output",
        ),
        (
            {
                "population": "x",
                "dimensions": ["patient_id"],
                "measures": [{"kind": "count", "name": "n"}],
            },
            "patient_id cannot be",
        ),
        (
            {
                "population": "x",
                "dimensions": ["a", "a"],
                "measures": [{"kind": "count", "name": "n"}],
            },
            "used twice",
        ),
        (
            {
                "population": "x",
                "dimensions": [{"column": "a", "bands": [3, 2]}],
                "measures": [{"kind": "count", "name": "n"}],
            },
            "must increase",
        ),
        (
            {
                "population": "x",
                "dimensions": [{"column": "a", "domain": ["other"]}],
                "measures": [{"kind": "count", "name": "n"}],
            },
            "'other'",
        ),
        (
            {"population": "x", "measures": [{"kind": "count", "name": "n", "bounds": [0, 1]}]},
            "takes no bounds",
        ),
        (
            {
                "population": "x",
                "measures": [
                    {"kind": "quantile", "name": "q", "column": "v", "bounds": [0, 1], "q": 1.5}
                ],
            },
            "between 0 and 1",
        ),
        (
            {"population": "x", "measures": [{"kind": "count", "name": "n"}], "mode": "exact"},
            "unknown field",
        ),
        ({"population": "x", "measures": [{"kind": "count", "name": "<b>"}]}, "not allowed"),
        (
            {
                "population": "x",
                "dimensions": ["a", "b", "c", "d", "e"],
                "measures": [{"kind": "count", "name": "n"}],
            },
            "at most 4",
        ),
    ],
)
def test_definitions_the_model_does_not_allow_are_refused(data: dict, why: str) -> None:
    with pytest.raises(ModelRefused, match=why):
        definition_from_dict(data)


def test_bounds_are_read_from_name_low_high() -> None:
    assert parse_bounds(["m=0:10", "", " s = -5:5 "]) == {"m": (0.0, 10.0), "s": (-5.0, 5.0)}
    for bad in ("m=10:0", "m=a:b", "m", "m=1:inf", "=1:2"):
        with pytest.raises(InvalidInput):
            parse_bounds([bad])


def test_declared_keys_include_other_for_a_domain() -> None:
    assert Dimension("a", domain=("x", "y")).keys() == ["x", "y", "other"]
    assert Dimension("a").keys() is None


# -- aggregate SQL ------------------------------------------------------------------------------


def test_aggregate_sql_is_read_as_a_population_dimensions_and_measures() -> None:
    definition = definition_from_sql(
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n, "
        "count(DISTINCT p.patient_id) FILTER (WHERE e.code = 'X') AS has_x, "
        "avg(e.value) AS mean_value, quantile_cont(e.value, 0.25) AS q1 "
        "FROM patients p JOIN events e ON e.patient_id = p.patient_id GROUP BY p.sex",
        ALLOWED,
        {"mean_value": (0.0, 100.0), "q1": (0.0, 100.0)},
    )
    assert [d.name for d in definition.dimensions] == ["sex"]
    kinds = [(m.name, m.kind, m.column) for m in definition.measures]
    assert kinds == [
        ("n", MeasureKind.COUNT, None),
        ("has_x", MeasureKind.COUNT, "has_x_flag"),
        ("mean_value", MeasureKind.MEAN, "mean_value_value"),
        ("q1", MeasureKind.QUANTILE, "q1_value"),
    ]
    assert definition.measures[3].q == 0.25
    check_person_level(check_query(definition.population, ALLOWED))  # a valid population


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT sex, count(*) AS n FROM patients GROUP BY sex", "counts people, not rows"),
        (
            "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex HAVING count(DISTINCT patient_id) > 5",
            "HAVING",
        ),
        ("SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex LIMIT 1", "LIMIT"),
        ("SELECT sex, max(birth_year) AS m FROM patients GROUP BY sex", "one person's own value"),
        ("SELECT count(DISTINCT patient_id) * 2 AS n FROM patients", "arithmetic on aggregates"),
        ("SELECT sex FROM patients", "only aggregates leave"),
        (
            "SELECT sex, area, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex",
            "neither grouped by",
        ),
        (
            "SELECT count(DISTINCT patient_id) AS n FROM patients GROUP BY sex",
            "must also be an output",
        ),
        ("SELECT sex, avg(birth_year) AS m FROM patients GROUP BY sex", "needs bounds"),
        (
            "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY ROLLUP (sex)",
            "ROLLUP",
        ),
        (
            "SELECT sex, row_number() OVER () AS r, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex",
            "window",
        ),
        (
            "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex UNION ALL SELECT sex, count(DISTINCT patient_id) FROM patients GROUP BY sex",
            "one SELECT",
        ),
    ],
)
def test_aggregate_sql_outside_the_model_is_refused(sql: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        definition_from_sql(sql, ALLOWED)


def test_bounds_for_no_value_measure_are_refused() -> None:
    with pytest.raises(ModelRefused, match="not a sum, avg"):
        definition_from_sql(
            "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex",
            ALLOWED,
            {"n": (0.0, 1.0)},
        )


# -- populations ----------------------------------------------------------------------------------

PERSON_LEVEL = [
    "SELECT patient_id, sex FROM patients",
    "SELECT p.patient_id, e.code FROM patients p JOIN events e ON e.patient_id = p.patient_id",
    "SELECT p.patient_id FROM patients p LEFT JOIN events e ON e.patient_id = p.patient_id AND e.code = 'X' WHERE e.patient_id IS NULL",
    "SELECT patient_id, count(*) AS n FROM events GROUP BY patient_id",
    "SELECT patient_id, code, count(*) AS n FROM events GROUP BY patient_id, code",
    "SELECT e.patient_id, e.value FROM events e QUALIFY row_number() OVER (PARTITION BY e.patient_id ORDER BY e.date DESC) = 1",
    "SELECT p.patient_id, (SELECT max(e.value) FROM events e WHERE e.patient_id = p.patient_id) AS latest FROM patients p",
    "SELECT p.patient_id FROM patients p WHERE EXISTS (SELECT 1 FROM medications m WHERE m.patient_id = p.patient_id AND m.code = 'M')",
    "SELECT p.patient_id FROM patients p WHERE p.patient_id IN (SELECT patient_id FROM events WHERE code = 'X')",
    "WITH dx AS (SELECT patient_id, min(date) AS d FROM events GROUP BY patient_id) SELECT p.patient_id, dx.d FROM patients p JOIN dx ON dx.patient_id = p.patient_id",
    "SELECT patient_id FROM events UNION SELECT patient_id FROM medications",
    "SELECT patient_id FROM events EXCEPT SELECT patient_id FROM medications",
    "SELECT DISTINCT patient_id, code FROM events",
    "SELECT p.patient_id, CAST(p.birth_year AS VARCHAR) AS y FROM patients p",
]


@pytest.mark.parametrize("sql", PERSON_LEVEL)
def test_person_level_populations_are_accepted(sql: str) -> None:
    checked = check_person_level(check_query(sql, ALLOWED))
    assert "patient_id" in [c.lower() for c in checked.columns]


NOT_PERSON_LEVEL = [
    ("SELECT sex FROM patients", "must output patient_id"),
    (
        "SELECT patient_id, count(*) AS n FROM events GROUP BY code, patient_id HAVING count(*) > (SELECT count(*) FROM events)",
        "correlated",
    ),
    ("SELECT e.patient_id, max(e.value) OVER () AS m FROM events e", "PARTITION BY patient_id"),
    (
        "SELECT e.patient_id, max(e.value) OVER (PARTITION BY e.code) AS m FROM events e",
        "PARTITION BY patient_id",
    ),
    ("SELECT count(*) AS n, min(patient_id) AS patient_id FROM events", "used as a value"),
    ("SELECT count(*) AS n, e.patient_id FROM events e", "per person"),
    ("SELECT p.patient_id FROM patients p JOIN events e ON e.code = p.sex", "joined on patient_id"),
    ("SELECT p.patient_id FROM patients p, events e", "joined on patient_id"),
    ("SELECT p.patient_id FROM patients p CROSS JOIN events e", "CROSS"),
    (
        "SELECT p.patient_id FROM patients p RIGHT JOIN events e ON e.patient_id = p.patient_id",
        "RIGHT",
    ),
    (
        "SELECT p.patient_id FROM patients p FULL JOIN events e ON e.patient_id = p.patient_id",
        "FULL",
    ),
    (
        "SELECT p.patient_id FROM patients p JOIN events e ON e.patient_id = p.patient_id OR e.code = 'X'",
        "joined on patient_id",
    ),
    ("SELECT patient_id FROM events ORDER BY value LIMIT 5", "LIMIT"),
    ("SELECT p.patient_id FROM patients p WHERE p.patient_id = 'abc'", "used as a value"),
    ("SELECT p.patient_id, length(p.patient_id) AS l FROM patients p", "used as a value"),
    ("SELECT p.patient_id, p.patient_id AS again FROM patients p", "used as a value"),
    (
        "SELECT p.patient_id FROM patients p WHERE p.birth_year = (SELECT max(birth_year) FROM patients)",
        "correlated",
    ),
    ("SELECT p.patient_id FROM patients p WHERE p.sex IN (SELECT sex FROM patients)", "correlated"),
    (
        "SELECT x.patient_id FROM (SELECT code AS patient_id FROM events) x",
        "patient_id of the FROM view",
    ),
    (
        "SELECT p.patient_id, (SELECT e.value FROM events e WHERE e.patient_id = p.patient_id) AS v FROM patients p",
        "one aggregate",
    ),
    (
        "SELECT patient_id FROM events UNION SELECT code FROM medications",
        "exactly once|same position|patient_id",
    ),
    ("SELECT p.patient_id, p FROM patients p", "names a table"),
    ("SELECT t.patient_id FROM events t(patient_id, c)", "column lists"),
    ("SELECT p.patient_id, (p.sex, p.area) AS k FROM patients p", "row values"),
    ("SELECT patient_id, code FROM events GROUP BY ROLLUP (patient_id, code)", "ROLLUP"),
    ("SELECT p.patient_id, p.birth_year + 1 FROM patients p", "needs a name"),
]


@pytest.mark.parametrize(("sql", "why"), NOT_PERSON_LEVEL)
def test_populations_that_mix_people_are_refused_with_the_reason(sql: str, why: str) -> None:
    with pytest.raises(QueryRefused, match=why):
        check_person_level(check_query(sql, ALLOWED))


def test_refusals_are_about_the_query_not_the_data() -> None:
    """Every refusal above is decided from the text alone: no data is read to decide."""
    for sql, _ in NOT_PERSON_LEVEL:
        with pytest.raises(QueryRefused) as first:
            check_person_level(check_query(sql, ALLOWED))
        with pytest.raises(QueryRefused) as again:
            check_person_level(check_query(sql, ALLOWED))
        assert first.value.message == again.value.message
        assert isinstance(first.value, QueryRefused)
    assert issubclass(NotPersonLevel, QueryRefused)


# -- totality ---------------------------------------------------------------------------------------

EXPRESSIONS = [
    "CAST(e.code AS INTEGER)",
    "e.value // (e.value - e.value)",
    "CAST(e.value AS BIGINT) % CAST(e.value - e.value AS BIGINT)",
    "make_date(2020, CAST(e.value AS INTEGER), 1)",
    "CAST(e.value AS BIGINT) * 9223372036854775807",
    "abs(CAST(e.value AS BIGINT) - 9223372036854775807 - 1)",
    "e.date + INTERVAL (CAST(e.value AS INTEGER) * 100000000) DAY",
    "sqrt(e.value - 1000)",
    "ln(e.value - 1000)",
    "CAST(e.code AS DATE)",
]


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(10**12), 10**12),
        ),
        min_size=1,
        max_size=8,
    ),
    codes=st.lists(st.text(max_size=6), min_size=1, max_size=8),
    expression=st.sampled_from(EXPRESSIONS),
)
def test_no_value_makes_a_population_fail(values: list, codes: list, expression: str) -> None:
    """Whatever the data, a checked population runs: a failure would be an oracle."""
    sql = f"SELECT e.patient_id, {expression} AS x FROM events e"
    total = check_person_level(check_query(sql, ALLOWED)).sql_for("duckdb")
    con = duckdb.connect()
    rows = [
        {"patient_id": f"p{i}", "code": codes[i % len(codes)], "date": date(2020, 1, 1),
         "value": float(v) if v is not None else None}
        for i, v in enumerate(values)
    ]  # fmt: skip
    import pyarrow as pa

    con.register("events", pa.Table.from_pylist(rows, schema=SANDBOX_SCHEMAS["events"]))
    con.execute(total).fetchall()  # must not raise
