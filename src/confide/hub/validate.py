"""Checking a submission's rows before they enter the record store.

Every row is either accepted (its ``ref`` replaced by the person's pseudonym) or quarantined
with a reason a practice manager can act on. Checks run as SQL over Arrow tables; code checks
run once per distinct code, not once per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from confide.common.codes import why_code_invalid

QUARANTINE_SCHEMA = pa.schema(
    [("table", pa.string()), ("row", pa.int64()), ("reason", pa.string())]
)
EARLIEST = date(1900, 1, 1)


@dataclass
class Checked:
    tables: dict[str, pa.Table]
    quarantine: pa.Table


def _code_reasons(con: duckdb.DuckDBPyConnection, sql: str, name: str) -> None:
    """Create table ``name(system, code, reason)`` for each distinct (system, code) in ``sql``."""
    pairs = con.execute(f"SELECT DISTINCT system, code FROM ({sql})").fetchall()
    table = pa.table(
        {
            "system": pa.array([p[0] for p in pairs], pa.string()),
            "code": pa.array([p[1] for p in pairs], pa.string()),
            "reason": pa.array([why_code_invalid(p[0], p[1]) for p in pairs], pa.string()),
        }
    )
    con.register(name, table)


def _with_rows(table: pa.Table) -> pa.Table:
    return table.append_column("row", pa.array(np.arange(table.num_rows, dtype=np.int64)))


def check(source: str, kind: str, people: pa.Table, tables: dict[str, pa.Table]) -> Checked:
    """Split each submitted table into accepted rows and quarantine entries."""
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.register("people", people)
    for name, table in tables.items():
        con.register(f"in_{name}", _with_rows(table))
    latest = date.today() + timedelta(days=1)
    dates_ok = f"BETWEEN DATE '{EARLIEST}' AND DATE '{latest}'"

    person_reason = """
        CASE WHEN p.ref IS NULL THEN 'refers to a patient who is not in this submission'
             WHEN p.status <> 'linked' THEN coalesce(p.reason, 'patient could not be identified')
                  || '; the record is held until the patient can be linked'
        END"""
    rules: dict[str, tuple[str, str, str]] = {}

    _code_reasons(con, "SELECT system, code FROM in_events", "event_codes")
    _code_reasons(
        con,
        "SELECT value_system AS system, value_code AS code FROM in_events "
        "WHERE value_code IS NOT NULL",
        "answer_codes",
    )
    rules["events"] = (
        "in_events t LEFT JOIN event_codes c ON c.system IS NOT DISTINCT FROM t.system "
        "AND c.code IS NOT DISTINCT FROM t.code "
        "LEFT JOIN answer_codes a ON t.value_code IS NOT NULL "
        "AND a.system IS NOT DISTINCT FROM t.value_system AND a.code = t.value_code",
        f"""coalesce({person_reason},
            CASE WHEN t.system IS NULL THEN 'the coding system is not one Confide accepts'
                 WHEN t.kind NOT IN ('condition', 'observation', 'procedure', 'allergy',
                                     'immunisation')
                      THEN 'unknown event kind ' || coalesce(t.kind, '(missing)')
                 WHEN c.reason IS NOT NULL THEN c.reason
                 WHEN t.date IS NULL THEN 'the event has no date'
                 WHEN NOT (t.date {dates_ok}) THEN 'the event date is outside 1900 to today'
                 WHEN isnan(t.value) OR isinf(t.value) THEN 'the value is not a number'
                 WHEN t.comparator NOT IN ('<', '<=', '>=', '>')
                      THEN 'the comparator is not one of <, <=, >= or >'
                 WHEN a.reason IS NOT NULL THEN 'coded answer: ' || a.reason
            END)""",
        "t.kind, t.system, t.code, t.date, t.value, left(t.unit, 20) AS unit, "
        "t.comparator, t.value_system, t.value_code",
    )
    _code_reasons(con, "SELECT system, code FROM in_medications", "med_codes")
    rules["medications"] = (
        "in_medications t LEFT JOIN med_codes c ON c.system IS NOT DISTINCT FROM t.system "
        "AND c.code IS NOT DISTINCT FROM t.code",
        f"""coalesce({person_reason},
            CASE WHEN t.system IS DISTINCT FROM 'dmd' THEN 'medications must be coded in dm+d'
                 WHEN c.reason IS NOT NULL THEN c.reason
                 WHEN t.date IS NULL THEN 'the medication has no date'
                 WHEN NOT (t.date {dates_ok}) THEN 'the medication date is outside 1900 to today'
            END)""",
        "t.system, t.code, t.date, t.quantity, left(t.quantity_unit, 20) AS quantity_unit",
    )
    rules["registrations"] = (
        "in_registrations t",
        f"""coalesce({person_reason},
            CASE WHEN NOT regexp_full_match(coalesce(t.practice, ''), '[A-Z][0-9]{{5}}')
                      THEN 'the practice is not a GP practice ODS code'
                 WHEN t.start_date IS NULL THEN 'the registration has no start date'
                 WHEN t.end_date < t.start_date THEN 'the registration ends before it starts'
            END)""",
        "t.practice, t.start_date, t.end_date",
    )
    _code_reasons(
        con,
        "SELECT 'icd10' AS system, unnest(diagnoses) AS code FROM in_episodes "
        "UNION ALL SELECT 'opcs4', unnest(procedures) FROM in_episodes",
        "episode_codes",
    )
    rules["hospital_episodes"] = (
        "in_episodes t",
        f"""coalesce({person_reason},
            CASE WHEN len(coalesce(t.diagnoses, [])) = 0 THEN 'the episode has no diagnosis'
                 WHEN t.admission_date IS NULL THEN 'the episode has no admission date'
                 WHEN NOT (t.admission_date {dates_ok})
                      THEN 'the admission date is outside 1900 to today'
                 WHEN t.discharge_date < t.admission_date
                      THEN 'the episode is discharged before it is admitted'
                 ELSE (SELECT first(c.reason) FROM episode_codes c
                       WHERE c.reason IS NOT NULL AND (
                         (c.system = 'icd10' AND list_contains(t.diagnoses, c.code)) OR
                         (c.system = 'opcs4' AND list_contains(t.procedures, c.code))))
            END)""",
        "t.episode, t.admission_date, t.discharge_date, t.admission_method, "
        "t.diagnoses[1] AS primary_diagnosis, t.diagnoses, t.procedures",
    )
    rules["deaths"] = (
        "in_deaths t",
        f"""coalesce({person_reason},
            CASE WHEN t.date_of_death IS NULL OR NOT (t.date_of_death {dates_ok})
                 THEN 'the date of death is missing or outside 1900 to today' END)""",
        "t.date_of_death",
    )

    accepted: dict[str, pa.Table] = {}
    quarantined: list[pa.Table] = []
    for name, (from_sql, reason_sql, columns) in rules.items():
        submitted = "episodes" if name == "hospital_episodes" else name
        if submitted not in tables:
            continue
        # Rows of people who chose to share nothing are dropped outright: not stored, not
        # quarantined (they are not errors), only counted.
        con.execute(
            f"CREATE TABLE chk_{name} AS SELECT t.*, p.pseudonym, {reason_sql} AS reason "
            f"FROM {from_sql} LEFT JOIN people p ON p.ref = t.ref "
            "WHERE p.status IS DISTINCT FROM 'objector'"
        )
        accepted[name] = con.sql(
            f"SELECT pseudonym, '{source}' AS source, {columns} FROM chk_{name} t "
            "WHERE reason IS NULL"
        ).to_arrow_table()
        quarantined.append(
            con.sql(
                f"SELECT '{name}' AS \"table\", row, reason FROM chk_{name} "
                "WHERE reason IS NOT NULL ORDER BY row"
            ).to_arrow_table()
        )
    accepted["patients"] = con.sql(
        f"SELECT pseudonym, '{source}' AS source, birth_year, birth_month, sex, area, "
        f"'{kind}' AS source_kind, match_weight, linked_by FROM people WHERE status = 'linked'"
    ).to_arrow_table()
    quarantined.append(
        con.sql(
            "SELECT 'identities' AS \"table\", ref::BIGINT AS row, coalesce(reason, "
            "'patient could not be identified') || '; held until the patient can be linked' "
            "AS reason FROM people WHERE status = 'unlinked' ORDER BY ref"
        ).to_arrow_table()
    )
    quarantine = pa.concat_tables([q.cast(QUARANTINE_SCHEMA) for q in quarantined])
    return Checked(tables=accepted, quarantine=quarantine)
