"""Minimisation: from the canonical extract to the submission's clinical tables.

Everything the hub gets is coded data keyed by a submission-local ``ref``: no names, addresses,
free text, source-system ids, or the type 1 codes themselves (those travel as choices). Refs
are assigned in a random order, so a ref says nothing about where the patient sat in the
export. Objectors get a ref (their objection must reach the choices registry) but no rows.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import duckdb
import orjson
import pyarrow as pa

from confide.common.codes import TYPE1_DISSENT, TYPE1_WITHDRAWN
from confide.common.sealing import IDENTITY_SCHEMA
from confide.practice.model import Extract, Rejection


@dataclass
class Minimised:
    identities: pa.Table
    tables: dict[str, pa.Table]
    type1_excluded: int
    type1_withdrawn: int
    rejected: list[Rejection]
    # Rows in per table, by where they went: {table: {outcome: rows}}
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)


def _code_keys(pairs: set[tuple[str, str]]) -> str:
    return ", ".join(f"'{s}:{c}'" for s, c in sorted(pairs))


CLINICAL = ("registrations", "events", "medications", "episodes")
# Outcomes of a row at minimisation (docs/practices.md, "Every input accounted for").
SUBMITTED = "submitted"
OBJECTOR = "left out: type 1 objection"
CHOICE_CODE = "sent as a choice: type 1 code"
REJECTED = "rejected"


def _reject_rows(con: duckdb.DuckDBPyConnection, sql: str, file: str, out: list[Rejection]) -> None:
    """One rejection per row of ``sql`` (columns: local_id, reason, then the row's values),
    the row itself kept as the original (it stays at the practice)."""
    for row in con.execute(sql).fetchall():
        names = [d[0] for d in con.description] if con.description else []
        record = dict(zip(names, row, strict=True))
        out.append(
            Rejection(
                file=file,
                location=f"patient {record['local_id']}",
                reason=str(record.pop("reason")),
                original=orjson.dumps(record, default=str),
                outcome=REJECTED,
                resource_type=file,
            )
        )


def _identity_conflicts(con: duckdb.DuckDBPyConnection) -> None:
    """``conflicts(local_id, reason)``: every patient record whose identity cannot be trusted
    within this export, all of them, never "the first one": a local id used for two different
    people, or one NHS number with different sexes or birth dates."""
    con.execute(
        r"""
        CREATE TABLE distinct_patients AS SELECT DISTINCT * FROM src_patients;
        CREATE TABLE conflicts AS
        WITH same_id AS (
            SELECT local_id, count(*) AS n FROM distinct_patients
            GROUP BY local_id HAVING count(*) > 1
        ),
        numbered AS (
            SELECT local_id, regexp_replace(nhs_number, '[\s-]', '', 'g') AS nhs,
                   birth_date, lower(trim(sex)) AS sex
            FROM distinct_patients WHERE nhs_number IS NOT NULL
        ),
        same_nhs AS (
            SELECT nhs, count(DISTINCT local_id) AS n FROM numbered GROUP BY nhs
            HAVING count(DISTINCT birth_date) > 1 OR count(DISTINCT sex) > 1
        ),
        marked AS (
            SELECT local_id, 'the same patient id is used for ' || n
                   || ' different people; none of their records is used' AS reason
            FROM same_id
            UNION ALL
            SELECT m.local_id, 'the NHS number is shared by ' || s.n
                   || ' patient records with a different sex or birth date; none of them is used'
            FROM numbered m JOIN same_nhs s USING (nhs)
        )
        SELECT local_id, min(reason) AS reason FROM marked GROUP BY local_id ORDER BY local_id
        """
    )


def minimise(extract: Extract, type1: pa.Table) -> Minimised:
    """Drop objectors and everything that is not coded data; assign refs. Every input row
    ends in exactly one place, counted in ``accounts``."""
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    for name in ("patients", *CLINICAL):
        con.register(f"src_{name}", extract.table(name))
    con.register("type1", type1)
    salt = secrets.token_hex(16)
    rejected: list[Rejection] = []

    _identity_conflicts(con)
    _reject_rows(
        con,
        "SELECT c.reason, p.* FROM distinct_patients p JOIN conflicts c USING (local_id) "
        "ORDER BY ALL",
        "patients",
        rejected,
    )
    con.execute(
        f"""
        CREATE TABLE people AS
        SELECT p.*, t.state AS type1, t.date AS type1_date,
               (row_number() OVER (ORDER BY md5(p.local_id || '{salt}'), p.local_id) - 1)::INTEGER
                   AS ref
        FROM distinct_patients p
        LEFT JOIN type1 t USING (local_id)
        WHERE NOT EXISTS (SELECT 1 FROM conflicts c WHERE c.local_id = p.local_id)
        """
    )
    identities = con.sql(
        "SELECT ref, nhs_number, birth_date, postcode, sex, type1, type1_date FROM people "
        "ORDER BY ref"
    ).to_arrow_table()
    identities = identities.cast(IDENTITY_SCHEMA)
    con.execute(
        "CREATE TABLE kept AS SELECT local_id, ref FROM people "
        "WHERE type1 IS DISTINCT FROM 'dissent'"
    )

    type1_keys = _code_keys(TYPE1_DISSENT | TYPE1_WITHDRAWN)
    is_choice = f"coalesce(s.system, '') || ':' || s.code IN ({type1_keys})"
    # Why a row of a clinical table is not submitted (NULL: it is), in order.
    reasons = {
        name: f"""CASE
            WHEN EXISTS (SELECT 1 FROM conflicts c WHERE c.local_id = s.local_id)
                THEN (SELECT c.reason FROM conflicts c WHERE c.local_id = s.local_id)
            WHEN NOT EXISTS (SELECT 1 FROM people p WHERE p.local_id = s.local_id)
                THEN 'the row refers to a patient who is not in the export'
            {
            "WHEN s.code IS NULL THEN 'the row has no code: Confide keeps coded data only'"
            if name in ("events", "medications")
            else ""
        }
            END"""
        for name in CLINICAL
    }
    for name in CLINICAL:
        _reject_rows(
            con,
            f"SELECT * FROM (SELECT {reasons[name]} AS reason, s.* FROM src_{name} s) "
            "WHERE reason IS NOT NULL ORDER BY ALL",
            name,
            rejected,
        )
    queries = {
        "registrations": "SELECT k.ref, practice, start_date, end_date FROM src_registrations s "
        "JOIN kept k USING (local_id)",
        "events": f"""SELECT k.ref, kind, system, code, date, value, unit,
                   comparator, value_system, value_code
            FROM src_events s JOIN kept k USING (local_id)
            WHERE code IS NOT NULL AND NOT ({is_choice})""",
        "medications": "SELECT k.ref, system, code, date, quantity, quantity_unit "
        "FROM src_medications s JOIN kept k USING (local_id) WHERE code IS NOT NULL",
        "episodes": """SELECT k.ref,
               (row_number() OVER (ORDER BY k.ref, admission_date, episode_id))::INTEGER AS episode,
               admission_date, discharge_date, admission_method, diagnoses, procedures
            FROM src_episodes s JOIN kept k USING (local_id)""",
        "deaths": "SELECT k.ref, p.death_date AS date_of_death FROM people p "
        "JOIN kept k USING (local_id) WHERE p.death_date IS NOT NULL",
    }
    tables = {name: con.sql(sql).to_arrow_table() for name, sql in queries.items()}

    accounts: dict[str, dict[str, int]] = {}
    for name in CLINICAL:
        outcome = f"""CASE WHEN {reasons[name]} IS NOT NULL THEN '{REJECTED}'
            WHEN NOT EXISTS (SELECT 1 FROM kept k WHERE k.local_id = s.local_id) THEN '{OBJECTOR}'
            {f"WHEN {is_choice} THEN '{CHOICE_CODE}'" if name == "events" else ""}
            ELSE '{SUBMITTED}' END"""
        found = con.execute(
            f"SELECT {outcome} AS outcome, count(*) FROM src_{name} s GROUP BY ALL ORDER BY 1"
        ).fetchall()
        if found:
            accounts[name] = {str(k): int(n) for k, n in found}
    found = con.execute(
        f"""SELECT CASE WHEN in_conflict THEN '{REJECTED}'
                        WHEN type1 = 'dissent' THEN '{OBJECTOR}' ELSE '{SUBMITTED}' END,
                   count(*)
            FROM (SELECT true AS in_conflict, NULL AS type1 FROM distinct_patients d
                  WHERE EXISTS (SELECT 1 FROM conflicts c WHERE c.local_id = d.local_id)
                  UNION ALL SELECT false, type1 FROM people)
            GROUP BY ALL ORDER BY 1"""
    ).fetchall()
    if found:
        accounts["patients"] = {str(k): int(n) for k, n in found}
    distinct = con.execute("SELECT count(*) FROM distinct_patients").fetchone()
    duplicates = extract.table("patients").num_rows - (distinct[0] if distinct else 0)
    if duplicates:
        accounts.setdefault("patients", {})["merged: exact repeat"] = int(duplicates)

    counts = dict(
        con.execute(
            "SELECT type1, count(*) FROM people WHERE type1 IS NOT NULL GROUP BY type1"
        ).fetchall()
    )
    return Minimised(
        identities=identities,
        tables=tables,
        type1_excluded=int(counts.get("dissent", 0)),
        type1_withdrawn=int(counts.get("withdrawn", 0)),
        rejected=rejected,
        accounts=accounts,
    )
