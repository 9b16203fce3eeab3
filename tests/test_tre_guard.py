# ruff: noqa: E501  (the queries read best on one line each)
"""The SQL guard: hostile queries are refused with a specific reason before anything else
looks at them, and ordinary cohort queries are accepted (and transpile to Spark SQL). What a
query may *release* is the business of the query model: see test_tre_redteam.py."""

from __future__ import annotations

import pytest

from confide.tre.guard import QueryRefused, check_query, transpile

# A project's views: the record store tables with pseudonym replaced by patient_id.
ALLOWED: dict[str, set[str]] = {
    "patients": {"patient_id", "birth_year", "birth_month", "sex", "area"},
    "registrations": {"patient_id", "practice", "start_date", "end_date"},
    "events": {"patient_id", "kind", "system", "code", "date", "value", "unit"},
    "medications": {"patient_id", "system", "code", "date", "quantity", "quantity_unit"},
    "hospital_episodes": {
        "patient_id", "episode", "admission_date", "discharge_date", "admission_method",
        "primary_diagnosis", "diagnoses", "procedures",
    },
    "deaths": {"patient_id", "date_of_death"},
}  # fmt: skip

HOSTILE = [
    # sandbox escapes: files, network, extensions
    ("read_csv_file", "SELECT * FROM read_csv('/etc/passwd')", "file access function"),
    ("read_csv_auto", "SELECT count(*) FROM read_csv_auto('secrets.csv')", "file access function"),
    (
        "read_parquet_raw",
        "SELECT count(*) FROM read_parquet('records/tables/events/*.parquet')",
        "file access function",
    ),
    ("read_json", "SELECT * FROM read_json('x.json')", "file access function"),
    ("read_text", "SELECT content FROM read_text('/etc/hostname')", "file access function"),
    ("glob", "SELECT * FROM glob('*')", "file access function"),
    ("file_path_as_table", "SELECT * FROM 'events.parquet'", "file paths cannot be used as tables"),
    (
        "url_as_table",
        "SELECT * FROM 'https://example.org/x.csv'",
        "file paths cannot be used as tables",
    ),
    (
        "read_csv_in_subquery",
        "SELECT sex, count(*) FROM patients WHERE area IN (SELECT * FROM read_csv('a.csv')) GROUP BY sex",
        "file access function",
    ),
    ("copy_to", "COPY events TO 'out.csv'", "only SELECT queries are allowed"),
    ("attach", "ATTACH 'other.duckdb' AS other", "only SELECT queries are allowed"),
    ("detach", "DETACH other", "only SELECT queries are allowed"),
    ("install", "INSTALL httpfs", "only SELECT queries are allowed"),
    ("load", "LOAD httpfs", "only SELECT queries are allowed"),
    ("export_database", "EXPORT DATABASE 'dump'", "could not be read"),
    ("pragma", "PRAGMA database_list", "only SELECT queries are allowed"),
    ("set", "SET enable_external_access = true", "only SELECT queries are allowed"),
    ("reset", "RESET memory_limit", "only SELECT queries are allowed"),
    ("call", "CALL pragma_version()", "only SELECT queries are allowed"),
    (
        "create_table",
        "CREATE TABLE leak AS SELECT * FROM events",
        "only SELECT queries are allowed",
    ),
    ("create_macro", "CREATE MACRO m(a) AS a + 1", "only SELECT queries are allowed"),
    ("insert", "INSERT INTO events VALUES (1)", "only SELECT queries are allowed"),
    ("update", "UPDATE patients SET sex = 'x'", "only SELECT queries are allowed"),
    ("delete", "DELETE FROM deaths", "only SELECT queries are allowed"),
    ("drop", "DROP VIEW events", "only SELECT queries are allowed"),
    ("begin", "BEGIN TRANSACTION", "only SELECT queries are allowed"),
    ("checkpoint", "CHECKPOINT", "only SELECT queries are allowed"),
    ("explain", "EXPLAIN SELECT count(*) FROM events", "only SELECT queries are allowed"),
    ("use", "USE other", "only SELECT queries are allowed"),
    ("summarize", "SUMMARIZE events", "only SELECT queries are allowed"),
    ("describe", "DESCRIBE events", "only SELECT queries are allowed"),
    # other projects' views, raw tables, qualified names
    (
        "raw_table",
        "SELECT count(*) FROM raw_events",
        "table 'raw_events', which is not one of this project's views",
    ),
    (
        "other_project_view",
        "SELECT count(*) FROM demo_commercial_events",
        "not one of this project's views",
    ),
    ("schema_qualified", "SELECT count(*) FROM main.events", "qualified table names"),
    ("catalog_qualified", "SELECT count(*) FROM other_db.main.events", "qualified table names"),
    ("system_schema", "SELECT * FROM system.main.duckdb_tables", "qualified table names"),
    (
        "cte_shadow_elsewhere",
        "SELECT (SELECT count(*) FROM (WITH raw AS (SELECT 1 AS x) SELECT x FROM raw)) AS a, count(*) FROM raw GROUP BY 1",
        "not one of this project's views",
    ),
    ("hidden_column", "SELECT pseudonym, count(*) FROM events GROUP BY 1", "column 'pseudonym'"),
    (
        "unapproved_column",
        "SELECT nhs_number, count(*) FROM patients GROUP BY 1",
        "column 'nhs_number'",
    ),
    ("rowid", "SELECT rowid, count(*) FROM events GROUP BY 1", "column 'rowid'"),
    # catalogue snooping and settings
    ("information_schema", "SELECT * FROM information_schema.tables", "qualified table names"),
    ("pg_catalog", "SELECT * FROM pg_catalog.pg_tables", "qualified table names"),
    ("sqlite_master", "SELECT * FROM sqlite_master", "not one of this project's views"),
    ("duckdb_tables", "SELECT * FROM duckdb_tables()", "reads the system catalogue or settings"),
    (
        "duckdb_settings",
        "SELECT name, value FROM duckdb_settings()",
        "reads the system catalogue or settings",
    ),
    (
        "current_setting",
        "SELECT current_setting('home_directory')",
        "reads the system catalogue or settings",
    ),
    (
        "getenv",
        "SELECT getenv('HOME'), count(*) FROM events",
        "reads the system catalogue or settings",
    ),
    (
        "pragma_table_info",
        "SELECT * FROM pragma_table_info('events')",
        "reads the system catalogue or settings",
    ),
    (
        "query_function",
        "SELECT * FROM query('SELECT * FROM raw_events')",
        "runs SQL text dynamically",
    ),
    ("query_table", "SELECT * FROM query_table('raw_events')", "runs SQL text dynamically"),
    # resource exhaustion
    (
        "generate_series",
        "SELECT count(*) FROM generate_series(1, 1000000000000)",
        "can generate unbounded rows",
    ),
    ("range", "SELECT count(*) FROM range(1000000000000)", "can generate unbounded rows"),
    (
        "recursive_cte",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
        "recursive CTEs",
    ),
    (
        "repeat_string",
        "SELECT sex, max(repeat(area, 1000000000)) FROM patients GROUP BY sex",
        "can generate unbounded rows",
    ),
    (
        "unnest",
        "SELECT count(*) FROM (SELECT unnest(diagnoses) AS d FROM hospital_episodes)",
        "can generate unbounded rows",
    ),
    ("huge_query", "SELECT " + " + ".join(["1"] * 12000) + " FROM events", "longer than"),
    # comment, quoting and statement tricks
    (
        "stacked_statements",
        "SELECT count(*) FROM events; DROP VIEW events",
        "only one SELECT statement is allowed; found 2 statements",
    ),
    (
        "stacked_after_comment",
        "SELECT count(*) FROM events /* harmless */; ATTACH 'x.db'",
        "found 2 statements",
    ),
    (
        "line_comment_stack",
        "SELECT count(*) FROM events -- comment\n; SELECT * FROM read_csv('x')",
        "found 2 statements",
    ),
    ("quoted_raw_table", 'SELECT count(*) FROM "Raw_Events"', "not one of this project's views"),
    ("quoted_file", 'SELECT count(*) FROM "/tmp/x.parquet"', "file paths cannot be used as tables"),
    ("homoglyph_table", 'SELECT count(*) FROM "\u0435vents"', "names may use only the letters"),
    (
        "homoglyph_column",
        'SELECT "s\u0435x", count(*) FROM patients GROUP BY 1',
        "names may use only the letters",
    ),
    ("zero_width", 'SELECT count(*) FROM "events\u200b"', "names may use only the letters"),
    (
        "reserved_name",
        "SELECT sex AS __contributors, count(*) FROM patients GROUP BY 1",
        "reserved",
    ),
    (
        "unterminated_comment",
        "SELECT count(*) FROM events /* ; DROP VIEW events",
        "could not be read",
    ),
    # dialect features
    ("lambda", "SELECT list_transform(diagnoses, x -> x || 'a') FROM hospital_episodes", "lambda"),
    ("columns_star", "SELECT COLUMNS('.*') FROM events", "COLUMNS"),
    ("pivot", "PIVOT patients ON sex USING count(*)", "PIVOT"),
    ("sample", "SELECT count(*) FROM events USING SAMPLE 10%", "SAMPLE"),
    ("tablesample", "SELECT count(*) FROM events TABLESAMPLE (5 ROWS)", "SAMPLE"),
    ("prepared_param", "SELECT count(*) FROM events WHERE code = ?", "query parameters"),
    ("dollar_param", "SELECT count(*) FROM events WHERE code = $1", "query parameters"),
    (
        "regexp",
        "SELECT count(*) FROM events WHERE regexp_matches(code, '(a+)+$')",
        "not on the list of allowed functions",
    ),
    (
        "unknown_function",
        "SELECT sex, my_udf(area) FROM patients",
        "not on the list of allowed functions",
    ),
    (
        "string_agg",
        "SELECT sex, string_agg(patient_id, ',') FROM patients GROUP BY sex",
        "not on the list of allowed functions",
    ),
    (
        "list_agg",
        "SELECT sex, list(patient_id) FROM patients GROUP BY sex",
        "not on the list of allowed functions",
    ),
    ("select_into", "SELECT * INTO leak FROM events", "INTO"),
    ("not_sql", "DROP EVERYTHING PLEASE", "only SELECT queries are allowed"),
]

LEGIT = [
    "SELECT sex, count(*) AS n FROM patients GROUP BY sex",
    """SELECT CASE WHEN 2024 - birth_year < 40 THEN '0-39' WHEN 2024 - birth_year < 65 THEN '40-64' ELSE '65+' END AS age_band,
    sex, count(DISTINCT p.patient_id) AS n FROM patients p JOIN events e ON e.patient_id = p.patient_id
    WHERE e.code = '44054006' GROUP BY 1, 2 ORDER BY 1, 2""",
    "SELECT r.practice, count(*) AS registered FROM registrations r WHERE r.end_date IS NULL GROUP BY r.practice",
    """WITH dx AS (SELECT patient_id, min(date) AS dx_date FROM events WHERE code IN ('44054006','73211009') GROUP BY patient_id),
    rx AS (SELECT patient_id, min(date) AS rx_date FROM medications WHERE code LIKE '3%' GROUP BY patient_id)
    SELECT p.sex, count(*) AS n, avg(date_diff('day', dx.dx_date, rx.rx_date)) AS mean_days
    FROM dx JOIN rx ON rx.patient_id = dx.patient_id JOIN patients p ON p.patient_id = dx.patient_id
    WHERE rx.rx_date >= dx.dx_date AND rx.rx_date <= dx.dx_date + INTERVAL 90 DAY GROUP BY p.sex""",
    """WITH ranked AS (SELECT patient_id, code, date, row_number() OVER (PARTITION BY patient_id ORDER BY date) AS rn FROM events)
    SELECT code, count(*) AS first_events FROM ranked WHERE rn = 1 GROUP BY code""",
    "SELECT year(date) AS yr, count(DISTINCT patient_id) AS patients FROM events WHERE kind = 'condition' GROUP BY year(date)",
    "SELECT count(*) FROM deaths WHERE date_of_death >= DATE '2020-01-01'",
    "SELECT sex, avg(value) AS mean_bmi, count(*) n FROM events JOIN patients USING (patient_id) WHERE code = '60621009' GROUP BY sex",
    "SELECT admission_method, count(*) AS episodes, avg(date_diff('day', admission_date, discharge_date)) AS mean_los FROM hospital_episodes GROUP BY admission_method",
    "SELECT primary_diagnosis, count(DISTINCT patient_id) FROM hospital_episodes WHERE list_contains(diagnoses, 'I21') GROUP BY primary_diagnosis",
    "SELECT area, sex, count(*) FROM patients WHERE patient_id IN (SELECT patient_id FROM events WHERE code = '195967001') GROUP BY area, sex",
    "SELECT p.sex, count(*) FROM patients p WHERE EXISTS (SELECT 1 FROM deaths d WHERE d.patient_id = p.patient_id) GROUP BY p.sex",
    "-- prevalence\nSELECT sex, count(*) FILTER (WHERE birth_year < 1960) AS older, count(*) AS total FROM patients GROUP BY sex",
    "SELECT date_trunc('month', date) AS month, count(*) AS n FROM medications GROUP BY ALL ORDER BY month",
    "SELECT sex, sum(CASE WHEN birth_year < 1950 THEN 1 ELSE 0 END) AS born_before_1950 FROM patients GROUP BY sex",
    "SELECT coalesce(sex, 'unknown') AS sex, count(*) FROM patients GROUP BY 1 HAVING count(*) > 10",
    "WITH per_patient AS (SELECT patient_id, count(*) AS n_events FROM events GROUP BY patient_id) SELECT least(n_events, 10) AS n_events_capped, count(*) AS patients FROM per_patient GROUP BY 1",
    "SELECT e.code, count(DISTINCT e.patient_id) FROM events AS e LEFT JOIN deaths AS d ON d.patient_id = e.patient_id WHERE d.patient_id IS NULL GROUP BY e.code",
    "SELECT extract(year FROM admission_date) AS yr, count(*) FROM hospital_episodes GROUP BY 1 UNION ALL SELECT NULL, count(*) FROM hospital_episodes",
    "select SEX, COUNT(*) from PATIENTS group by SEX /* block comment */",
    "SELECT practice, round(avg(2024 - p.birth_year), 1) AS mean_age, count(*) FROM registrations r JOIN patients p ON p.patient_id = r.patient_id GROUP BY practice",
    "SELECT * FROM (SELECT sex, count(*) AS n FROM patients GROUP BY sex) t WHERE n > 0",
]


def test_the_suite_is_large_enough() -> None:
    assert len(HOSTILE) >= 40
    assert len({name for name, _, _ in HOSTILE}) == len(HOSTILE)
    assert len(LEGIT) >= 20


@pytest.mark.parametrize(
    ("sql", "reason"), [(q, r) for _, q, r in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_query_is_refused_with_a_clear_reason(sql: str, reason: str) -> None:
    with pytest.raises(QueryRefused) as refusal:
        check_query(sql, ALLOWED)
    assert reason in refusal.value.message


@pytest.mark.parametrize("sql", LEGIT)
def test_cohort_query_is_accepted_and_transpiles(sql: str) -> None:
    checked = check_query(sql, ALLOWED)
    assert checked.tables <= set(ALLOWED)
    assert all(column in ALLOWED[table] for table, column in checked.columns)
    assert "--" not in checked.sql and "/*" not in checked.sql
    spark = transpile(checked.sql, "spark")
    assert "SELECT" in spark.upper()
    # Re-checking the regenerated SQL accepts it too: normalising is stable.
    assert check_query(checked.sql, ALLOWED).sql == checked.sql
