# ruff: noqa: E501  (the attacks read best on one line each)
"""Red team: a hostile researcher tries to learn one fact about one person, with every class of
attack found against the TRE, on DuckDB and on Spark.

Each attack runs twice, in two worlds that differ in one fact about one person (the target: the
only woman born in 1931 and the only patient in area LS99): in one she has a rare diagnosis
(RARE1), a rare test result (RAREVAL 97 rather than 45) and a rare medicine (SECRETMED); in the
other she has none of them (and RAREVAL 45). An attack is judged by what it reveals, comparing
what the researcher sees in the two worlds: the same status for every query (a query refused
in one world and released in the other has answered the question), the same rows with the
same keys and the same cells suppressed, and the same numbers, except where the fact moved
the target within a released cell of at least the threshold of people: there the two
figures may differ by no more than the documented bound of one person's effect (the cell-key
method's guarantee). Anything else is a leak.

The classes (from the findings this suite was written against):
1. a small group's keys released beside a blanked count;
2. value aggregates released exactly (one person's value, or a yes/no answer through it);
3. arithmetic on counts escaping rounding and suppression;
4. a table or subquery name used as a value (whole rows);
5. column lists on table aliases renaming what is counted;
6. one person's data reaching other people's rows (windows, subqueries, joins);
7. errors and crashes as oracles;
8. the researcher choosing the protection (see test_tre_service.py and test_tre_api.py:
   there is no such option);
9. differencing: two queries whose cells differ by the target.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from tre_sandbox import Answer, Population, answer, event, person

from confide.tre.model import MeasureKind
from confide.tre.rules import RULE_SETS

TARGET = "t-target"
AREA = "LS99"


def world(fact: bool) -> Population:
    """150 people in six areas, with diagnoses, HbA1c results and medicines; the target's
    rare facts only when ``fact``."""
    rng = random.Random(20240)
    population = Population()
    codes = ["DIAB", "ASTH", "HYP", "COPD"]
    for i in range(150):
        pid = f"p{i:03d}"
        sex = "female" if i % 2 else "male"
        population.patients.append(person(pid, rng.randint(1935, 2010), sex, f"LS{1 + i % 6}"))
        for _ in range(rng.randint(1, 3)):
            when = date(2015 + rng.randint(0, 8), rng.randint(1, 12), rng.randint(1, 28))
            population.events.append(event(pid, rng.choice(codes), when))
        population.events.append(
            event(pid, "HBA1C", date(2020, rng.randint(1, 12), 1), float(rng.randint(30, 90)))
        )
        if rng.random() < 0.4:
            population.medications.append(
                {"patient_id": pid, "code": "MET", "date": date(2021, 1, 1), "quantity": 56.0}
            )
    population.patients.append(person(TARGET, 1931, "female", AREA))
    population.events.append(event(TARGET, "DIAB", date(2019, 5, 1)))
    population.events.append(event(TARGET, "HBA1C", date(2020, 5, 1), 52.0))
    population.events.append(event(TARGET, "RAREVAL", date(2021, 5, 1), 97.0 if fact else 45.0))
    if fact:
        population.events.append(event(TARGET, "RARE1", date(2022, 3, 1)))
        population.medications.append(
            {"patient_id": TARGET, "code": "SECRETMED", "date": date(2022, 4, 1), "quantity": 1.0}
        )
    return population


WORLDS = {True: world(True), False: world(False)}
IS_TARGET = f"p.birth_year = 1931 AND p.area = '{AREA}'"
HAS_FACT = "EXISTS (SELECT 1 FROM events x WHERE x.patient_id = p.patient_id AND x.code = 'RARE1')"


@dataclass(frozen=True)
class Attack:
    name: str
    cls: int
    queries: tuple[Any, ...]  # run in order; each SQL text or a definition
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    totals: bool = False


def attack(name: str, cls: int, *queries: Any, **options: Any) -> Attack:
    return Attack(name, cls, queries, **options)


ATTACKS = [
    # 1. small groups' keys -----------------------------------------------------------------
    attack(
        "having_eq_one",
        1,
        "SELECT p.birth_year, p.sex, p.area, e.code, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id GROUP BY 1, 2, 3, 4 HAVING count(DISTINCT p.patient_id) = 1",
    ),
    attack(
        "group_by_everything",
        1,
        "SELECT p.birth_year, p.sex, p.area, e.code, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id GROUP BY 1, 2, 3, 4",
    ),
    attack(
        "codes_of_one_area",
        1,
        f"SELECT e.code, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE p.area = '{AREA}' GROUP BY e.code",
    ),
    attack(
        "area_by_code",
        1,
        "SELECT p.area, e.code, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id GROUP BY 1, 2",
    ),
    attack(
        "birth_year_by_code",
        1,
        "SELECT p.birth_year, e.code, count(DISTINCT e.patient_id) AS n FROM events e JOIN patients p ON p.patient_id = e.patient_id GROUP BY 1, 2",
    ),
    attack(
        "area_by_code_with_totals",
        1,
        "SELECT p.area, e.code, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id GROUP BY 1, 2",
        totals=True,
    ),
    attack(
        "declared_domain_isolates",
        1,
        {
            "population": f"SELECT p.patient_id, e.code FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE {IS_TARGET}",
            "dimensions": [{"column": "code", "domain": ["RARE1", "DIAB"]}],
            "measures": [{"kind": "count", "name": "n"}],
        },
    ),
    attack(
        "declared_domain_with_totals",
        1,
        {
            "population": "SELECT p.patient_id, p.area, e.code FROM patients p JOIN events e ON e.patient_id = p.patient_id",
            "dimensions": [
                {"column": "area", "domain": [AREA, "LS1"]},
                {"column": "code", "domain": ["RARE1", "DIAB"]},
            ],
            "measures": [{"kind": "count", "name": "n"}],
            "totals": True,
        },
    ),
    attack(
        "flag_as_dimension",
        1,
        f"SELECT CASE WHEN {IS_TARGET} AND {HAS_FACT} THEN 'yes' ELSE 'no' END AS flagged, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY 1",
    ),
    attack(
        "flag_dimension_with_totals",
        1,
        f"SELECT p.sex, CASE WHEN {HAS_FACT} THEN 'yes' ELSE 'no' END AS flagged, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY 1, 2",
        totals=True,
    ),
    attack(
        "semi_join_on_area",
        1,
        f"SELECT e.code, count(DISTINCT e.patient_id) AS n FROM events e WHERE e.patient_id IN (SELECT q.patient_id FROM patients q WHERE q.area = '{AREA}') GROUP BY e.code",
    ),
    attack(
        "medicines_of_one_person",
        1,
        f"SELECT m.code, count(DISTINCT m.patient_id) AS n FROM medications m JOIN patients p ON p.patient_id = m.patient_id WHERE {IS_TARGET} GROUP BY m.code",
    ),
    attack(
        "union_of_codes",
        1,
        f"WITH codes AS (SELECT patient_id, code FROM events UNION ALL SELECT patient_id, code FROM medications) SELECT c.code, count(DISTINCT c.patient_id) AS n FROM codes c JOIN patients p ON p.patient_id = c.patient_id WHERE p.area = '{AREA}' GROUP BY c.code",
    ),
    attack(
        "rare_code_everywhere",
        1,
        "SELECT e.code, count(DISTINCT e.patient_id) AS n FROM events e GROUP BY e.code",
    ),
    attack(
        "quantile_by_code",
        1,
        "SELECT e.code, median(p.birth_year) AS born FROM events e JOIN patients p ON p.patient_id = e.patient_id GROUP BY e.code",
        bounds={"born": (1900.0, 2020.0)},
    ),
    # 2. value aggregates ----------------------------------------------------------------------
    attack(
        "sum_one_value_tiny_others",
        2,
        f"SELECT sum(CASE WHEN {IS_TARGET} AND e.code = 'RAREVAL' THEN e.value ELSE 0.000001 END) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id",
        bounds={"v": (0.0, 1000.0)},
    ),
    attack(
        "sum_yes_no",
        2,
        f"SELECT sum(CASE WHEN {IS_TARGET} AND {HAS_FACT} THEN 1 ELSE 0.000001 END) AS v FROM patients p",
        bounds={"v": (0.0, 1.0)},
    ),
    attack(
        "mean_known_constant_others",
        2,
        f"SELECT avg(CASE WHEN {IS_TARGET} THEN e.value ELSE 50 END) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('RAREVAL', 'HBA1C')",
        bounds={"v": (44.0, 98.0)},
    ),
    attack(
        "mean_two_known_constants",
        2,
        f"SELECT avg(CASE WHEN {IS_TARGET} THEN e.value WHEN p.sex = 'male' THEN 50 ELSE 50.5 END) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('RAREVAL', 'HBA1C')",
        bounds={"v": (44.0, 98.0)},
    ),
    attack(
        "mean_flag_yes_no",
        2,
        f"SELECT avg(CASE WHEN {HAS_FACT} THEN 1 ELSE 0 END) AS v FROM patients p",
        bounds={"v": (0.0, 1.0)},
    ),
    attack(
        "sum_flag_yes_no",
        2,
        f"SELECT sum(CASE WHEN {HAS_FACT} THEN 1 ELSE 0 END) AS v FROM patients p",
        bounds={"v": (0.0, 1.0)},
    ),
    attack(
        "median_of_constants",
        2,
        f"SELECT median(CASE WHEN {IS_TARGET} THEN e.value ELSE 50 END) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('RAREVAL', 'HBA1C')",
        bounds={"v": (0.0, 200.0)},
    ),
    attack(
        "high_quantile_of_constants",
        2,
        f"SELECT quantile_cont(CASE WHEN {IS_TARGET} THEN e.value ELSE 10 END, 0.99) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('RAREVAL', 'HBA1C')",
        bounds={"v": (0.0, 200.0)},
    ),
    attack(
        "sum_only_the_rare_test",
        2,
        "SELECT sum(e.value) AS v FROM events e WHERE e.code = 'RAREVAL'",
        bounds={"v": (0.0, 200.0)},
    ),
    attack(
        "mean_by_area",
        2,
        "SELECT p.area, avg(e.value) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code = 'RAREVAL' OR e.code = 'HBA1C' GROUP BY p.area",
        bounds={"v": (0.0, 200.0)},
    ),
    attack(
        "mean_filtered_to_target",
        2,
        f"SELECT p.sex, avg(e.value) FILTER (WHERE {IS_TARGET}) AS v, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code = 'RAREVAL' OR e.code = 'HBA1C' GROUP BY p.sex",
        bounds={"v": (0.0, 200.0)},
    ),
    attack(
        "definition_mean_of_one",
        2,
        {
            "population": f"SELECT p.patient_id, e.value FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code = 'RAREVAL' AND {IS_TARGET}",
            "dimensions": [],
            "measures": [{"kind": "mean", "name": "v", "column": "value", "bounds": [0, 200]}],
        },
    ),
    attack(
        "sum_narrow_bounds",
        2,
        f"SELECT sum(CASE WHEN {IS_TARGET} AND e.code = 'RAREVAL' THEN e.value ELSE 0 END) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id",
        bounds={"v": (44.0, 98.0)},
    ),
    attack(
        "stddev_is_not_a_measure",
        2,
        f"SELECT stddev(CASE WHEN {IS_TARGET} THEN e.value ELSE 50 END) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id",
    ),
    attack(
        "max_is_not_a_measure", 2, "SELECT max(e.value) AS v FROM events e WHERE e.code = 'RAREVAL'"
    ),
    # 3. arithmetic on counts ------------------------------------------------------------------
    attack(
        "count_minus_filtered",
        3,
        f"SELECT count(*) - count(*) FILTER (WHERE {HAS_FACT}) AS n FROM patients p",
    ),
    attack(
        "count_plus_zero",
        3,
        f"SELECT count(DISTINCT p.patient_id) + 0 AS n FROM patients p WHERE {HAS_FACT}",
    ),
    attack(
        "count_modulo",
        3,
        f"SELECT count(DISTINCT p.patient_id) % 5 AS n FROM patients p WHERE {HAS_FACT} OR p.area = 'LS1'",
    ),
    attack(
        "count_ratio",
        3,
        f"SELECT count(DISTINCT p.patient_id) * 1.0 / 3 AS n FROM patients p WHERE {HAS_FACT} OR p.area = 'LS1'",
    ),
    attack(
        "count_as_text",
        3,
        f"SELECT CAST(count(DISTINCT p.patient_id) AS VARCHAR) AS n FROM patients p WHERE {HAS_FACT} OR p.area = 'LS1'",
    ),
    attack(
        "count_of_rows",
        3,
        f"SELECT count(*) AS n FROM patients p WHERE {HAS_FACT} OR p.area = 'LS1'",
    ),
    attack("count_if", 3, f"SELECT count_if({HAS_FACT}) AS n FROM patients p"),
    attack(
        "filtered_count_in_large_row",
        3,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n, count(DISTINCT p.patient_id) FILTER (WHERE {HAS_FACT}) AS flagged FROM patients p GROUP BY p.sex",
    ),
    attack(
        "per_person_count_summed",
        3,
        {
            "population": f"SELECT p.patient_id, (SELECT count(*) FROM events x WHERE x.patient_id = p.patient_id AND x.code = 'RARE1') AS n FROM patients p WHERE p.area = '{AREA}' OR p.area = 'LS1'",
            "dimensions": [],
            "measures": [{"kind": "sum", "name": "rare", "column": "n", "bounds": [0, 5]}],
        },
    ),
    attack(
        "stddev_of_flag",
        3,
        f"SELECT stddev(CASE WHEN {HAS_FACT} THEN 1 ELSE 0 END) AS n FROM patients p",
    ),
    # 4. tables and subqueries as values ---------------------------------------------------------
    attack(
        "table_as_column",
        4,
        "SELECT patients, count(DISTINCT patient_id) AS n FROM patients GROUP BY patients",
    ),
    attack(
        "subquery_alias_as_column",
        4,
        "SELECT x, count(DISTINCT x.patient_id) AS n FROM (SELECT e.patient_id, e.code FROM events e WHERE e.code = 'RARE1') x GROUP BY x",
    ),
    attack(
        "population_outputs_a_table",
        4,
        {
            "population": "SELECT p.patient_id, p FROM patients p",
            "dimensions": ["p"],
            "measures": [{"kind": "count", "name": "n"}],
        },
    ),
    attack(
        "row_value_dimension",
        4,
        "SELECT (p.birth_year, p.area) AS k, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY 1",
    ),
    attack(
        "struct_dimension",
        4,
        "SELECT {'y': p.birth_year, 'a': p.area} AS k, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY 1",
    ),
    # 5. column lists on aliases ------------------------------------------------------------------
    attack(
        "alias_column_list",
        5,
        "SELECT t.p, count(DISTINCT t.patient_id) AS n FROM events t(p, k, s, patient_id) GROUP BY t.p",
    ),
    attack(
        "cte_column_list",
        5,
        "WITH x(patient_id, code) AS (SELECT code, patient_id FROM events) SELECT x.code, count(DISTINCT x.patient_id) AS n FROM x GROUP BY x.code",
    ),
    attack(
        "subquery_column_list",
        5,
        "SELECT s.code, count(DISTINCT s.patient_id) AS n FROM (SELECT code, patient_id FROM events) s(patient_id, code) GROUP BY s.code",
    ),
    attack(
        "renamed_patient_column",
        5,
        "SELECT x.code, count(DISTINCT x.patient_id) AS n FROM (SELECT e.code AS patient_id, e.patient_id AS code FROM events e) x GROUP BY x.code",
    ),
    # 6. one person's data in other people's rows --------------------------------------------------
    attack(
        "window_over_everyone",
        6,
        f"WITH w AS (SELECT p.patient_id, max(CASE WHEN {IS_TARGET} AND {HAS_FACT} THEN 1 ELSE 0 END) OVER () AS f FROM patients p) SELECT w.f, count(DISTINCT w.patient_id) AS n FROM w GROUP BY w.f",
    ),
    attack(
        "window_by_area",
        6,
        f"WITH w AS (SELECT p.patient_id, max(CASE WHEN {HAS_FACT} THEN 1 ELSE 0 END) OVER (PARTITION BY p.sex) AS f FROM patients p) SELECT w.f, count(DISTINCT w.patient_id) AS n FROM w GROUP BY w.f",
    ),
    attack(
        "scalar_subquery_in_where",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE (SELECT count(*) FROM events x WHERE x.code = 'RARE1') > 0 GROUP BY p.sex",
    ),
    attack(
        "exists_uncorrelated",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE EXISTS (SELECT 1 FROM events x WHERE x.code = 'RARE1') GROUP BY p.sex",
    ),
    attack(
        "in_codes_of_target",
        6,
        f"SELECT e.code, count(DISTINCT e.patient_id) AS n FROM events e WHERE e.code IN (SELECT x.code FROM events x JOIN patients q ON q.patient_id = x.patient_id WHERE q.area = '{AREA}') GROUP BY e.code",
    ),
    attack(
        "join_on_area",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.code = 'RARE1' GROUP BY p.sex",
    ),
    attack(
        "comma_join",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p, events e WHERE e.code = 'RARE1' GROUP BY p.sex",
    ),
    attack(
        "or_in_join_condition",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id OR e.code = 'RARE1' GROUP BY p.sex",
    ),
    attack(
        "correlated_on_other_column",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE EXISTS (SELECT 1 FROM events x WHERE x.code = 'RARE1' AND x.date > DATE '2000-01-01' AND p.sex = 'female') GROUP BY p.sex",
    ),
    attack(
        "limit_picks_a_person",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE p.patient_id IN (SELECT x.patient_id FROM events x WHERE x.code = 'RARE1' LIMIT 1) GROUP BY p.sex",
    ),
    attack(
        "aggregate_across_people",
        6,
        "WITH c AS (SELECT count(*) AS k FROM events WHERE code = 'RARE1') SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p JOIN c ON c.k > 0 GROUP BY p.sex",
    ),
    attack(
        "patient_id_compared_with_a_value",
        6,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE p.patient_id < '8' GROUP BY p.sex",
    ),
    # 7. errors and crashes as oracles -----------------------------------------------------------------
    attack(
        "cast_fails_if_fact",
        7,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE CAST(CASE WHEN {HAS_FACT} THEN 'x' ELSE '1' END AS INTEGER) = 1 GROUP BY p.sex",
    ),
    attack(
        "division_by_zero_if_fact",
        7,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE 1 // (CASE WHEN {HAS_FACT} THEN 0 ELSE 1 END) = 1 GROUP BY p.sex",
    ),
    attack(
        "modulo_by_zero_if_fact",
        7,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE 7 % (CASE WHEN {HAS_FACT} THEN 0 ELSE 2 END) = 1 GROUP BY p.sex",
    ),
    attack(
        "impossible_date_if_fact",
        7,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE make_date(2020, CASE WHEN {HAS_FACT} THEN 13 ELSE 1 END, 1) > DATE '2000-01-01' GROUP BY p.sex",
    ),
    attack(
        "overflow_if_fact",
        7,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE (CASE WHEN {HAS_FACT} THEN 9223372036854775807 ELSE 1 END) + 1 > 0 GROUP BY p.sex",
    ),
    attack(
        "abs_overflow_if_fact",
        7,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE abs(CASE WHEN {HAS_FACT} THEN -9223372036854775808 ELSE 1 END) > 0 GROUP BY p.sex",
    ),
    attack(
        "scalar_subquery_two_rows_if_fact",
        7,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE (SELECT x.code FROM events x WHERE x.patient_id = p.patient_id AND x.code IN ('RARE1', 'DIAB')) IS NOT NULL GROUP BY p.sex",
    ),
    attack(
        "decimal_and_date_outputs",
        7,
        f"SELECT CAST(e.value AS DECIMAL(10, 2)) AS v, e.date AS d, count(DISTINCT e.patient_id) AS n FROM events e JOIN patients p ON p.patient_id = e.patient_id WHERE {IS_TARGET} GROUP BY 1, 2",
    ),
    attack(
        "deep_nesting",
        7,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE "
        + "(" * 150
        + "p.birth_year > 1900"
        + ")" * 150
        + " GROUP BY p.sex",
    ),
    attack(
        "sqrt_of_negative_if_fact",
        7,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE sqrt(CASE WHEN {HAS_FACT} THEN -1 ELSE 1 END) > 0 GROUP BY p.sex",
    ),
    # 9. differencing ----------------------------------------------------------------------------------
    attack(
        "base_then_without_target",
        9,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('DIAB', 'RARE1') GROUP BY p.sex",
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('DIAB', 'RARE1') AND NOT p.birth_year = 1931 GROUP BY p.sex",
    ),
    attack(
        "everyone_then_everyone_but_fact",
        9,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.sex",
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE NOT {HAS_FACT} GROUP BY p.sex",
    ),
    attack(
        "two_measures_in_one_query",
        9,
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n, count(DISTINCT p.patient_id) FILTER (WHERE NOT {HAS_FACT}) AS without FROM patients p GROUP BY p.sex",
    ),
    attack(
        "sum_then_sum_without_target",
        9,
        "SELECT p.sex, sum(e.value) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('HBA1C', 'RAREVAL') GROUP BY p.sex",
        f"SELECT p.sex, sum(e.value) AS v FROM patients p JOIN events e ON e.patient_id = p.patient_id WHERE e.code IN ('HBA1C', 'RAREVAL') AND NOT ({IS_TARGET} AND {HAS_FACT}) GROUP BY p.sex",
        bounds={"v": (0.0, 200.0)},
    ),
    attack(
        "margin_then_cells",
        9,
        "SELECT p.area, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.area",
        f"SELECT p.area, count(DISTINCT p.patient_id) AS n FROM patients p WHERE p.area <> '{AREA}' OR NOT {HAS_FACT} GROUP BY p.area",
        totals=True,
    ),
    attack(
        "bisect_by_birth_year",
        9,
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE p.birth_year < 1960 GROUP BY p.sex",
        "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE p.birth_year < 1960 AND p.birth_year > 1931 GROUP BY p.sex",
        f"SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p WHERE p.birth_year < 1960 AND (p.birth_year > 1931 OR {HAS_FACT}) GROUP BY p.sex",
    ),
]


def _run(attack: Attack, fact: bool, engine: str, spark: Any) -> list[Answer]:
    """Every query of the attack, in order, in one world (releases are remembered for the
    differencing check, as the TRE remembers a project's releases)."""
    population = WORLDS[fact]
    earlier: list[Any] = []
    seen = []
    for query in attack.queries:
        result = answer(
            population, query, bounds=attack.bounds, totals=attack.totals, engine=engine,
            spark=spark, earlier=earlier,
        )  # fmt: skip
        if result.status == "released":
            earlier.extend(result.sketches)
        seen.append(result)
    return seen


RULES = RULE_SETS["acro"]


def _one_person(measure: Any, people: int) -> float:
    """The documented bound on how far one person more or fewer moves a released figure."""
    if measure.kind is MeasureKind.COUNT:
        return RULES.count_bound
    noise = 2 * RULES.value_noise * measure.width
    if measure.kind is MeasureKind.SUM:
        return measure.bound + noise
    if measure.kind is MeasureKind.MEAN:
        return (measure.width + noise) / max(1, people - 1) + 1e-9
    return (measure.width + noise) / RULES.threshold + 1e-9


def _reveals(attack: Attack, with_fact: list[Answer], without: list[Answer]) -> str | None:
    """Why the two worlds can be told apart, or None."""
    for number, (a, b) in enumerate(zip(with_fact, without, strict=True), start=1):
        if a.status != b.status:
            return f"query {number}: {a.status} in one world, {b.status} in the other"
        if a.status != "released":
            continue
        assert a.output is not None and b.output is not None and a.definition is not None
        if a.output.columns != b.output.columns or len(a.rows or []) != len(b.rows or []):
            return f"query {number}: different tables"
        dims = [d.name for d in a.definition.dimensions]
        measures = {m.name: m for m in a.definition.measures}
        people_a = {(c.row, c.measure): c.people for c in a.output.released}
        people_b = {(c.row, c.measure): c.people for c in b.output.released}
        for index, (row_a, row_b) in enumerate(zip(a.rows or [], b.rows or [], strict=True)):
            if [row_a[d] for d in dims] != [row_b[d] for d in dims]:
                return f"query {number}: row {index} has other keys"
            for name, measure in measures.items():
                x, y = row_a[name], row_b[name]
                if (x is None) != (y is None):
                    return f"query {number}: {name} of row {index} suppressed in one world only"
                if x is None or x == y:
                    continue
                small = min(people_a[(index, name)], people_b[(index, name)])
                if small < RULES.threshold:
                    return (
                        f"query {number}: {name} of row {index} moved with fewer than the threshold"
                    )
                if abs(x - y) > _one_person(measure, small):
                    return f"query {number}: {name} of row {index} moved by {abs(x - y):g}"
    return None


@pytest.fixture(params=["duckdb", "spark"])
def engine(request: pytest.FixtureRequest) -> tuple[str, Any]:
    if request.param == "spark":
        return "spark", request.getfixturevalue("spark")
    return "duckdb", None


def test_the_suite_covers_every_class_with_variations() -> None:
    assert len(ATTACKS) >= 60
    assert len({a.name for a in ATTACKS}) == len(ATTACKS)
    for cls in (1, 2, 3, 4, 5, 6, 7, 9):
        assert sum(a.cls == cls for a in ATTACKS) >= 3, cls


def test_the_worlds_differ_in_the_fact_only() -> None:
    true, false = WORLDS[True], WORLDS[False]
    assert true.patients == false.patients
    assert [e for e in true.events if e["patient_id"] != TARGET] == [
        e for e in false.events if e["patient_id"] != TARGET
    ]
    assert any(e["code"] == "RARE1" for e in true.events)
    assert not any(e["code"] == "RARE1" for e in false.events)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_the_attack_reveals_nothing(attack: Attack, engine: tuple[str, Any]) -> None:
    name, spark = engine
    why = _reveals(attack, _run(attack, True, name, spark), _run(attack, False, name, spark))
    assert why is None, f"{attack.name} tells the worlds apart on {name}: {why}"
