"""Minimisation: from the canonical extract to the submission's clinical tables.

Everything the hub gets is coded data keyed by a submission-local ``ref``: no names, addresses,
free text, source-system ids, or the type 1 codes themselves (those travel as choices). Refs
are assigned in a random order, so a ref says nothing about where the patient sat in the
export. Objectors get a ref (their objection must reach the choices registry) but no rows.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import duckdb
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


def _code_keys(pairs: set[tuple[str, str]]) -> str:
    return ", ".join(f"'{s}:{c}'" for s, c in sorted(pairs))


def minimise(extract: Extract, type1: pa.Table) -> Minimised:
    """Drop objectors and everything that is not coded data; assign refs."""
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    for name in ("patients", "registrations", "events", "medications", "episodes"):
        con.register(f"src_{name}", extract.table(name))
    con.register("type1", type1)
    salt = secrets.token_hex(16)
    rejected: list[Rejection] = []

    dupes = con.execute(
        "SELECT local_id, count(*) AS n FROM src_patients GROUP BY local_id HAVING n > 1"
    ).fetchall()
    for local_id, n in dupes:
        rejected.append(
            Rejection(
                file="patients",
                location=f"patient {local_id}",
                reason=f"the same patient id appears {n} times; only the first record was used",
                original=b"",
            )
        )

    con.execute(
        f"""
        CREATE TABLE people AS
        SELECT p.*, t.state AS type1, t.date AS type1_date,
               (row_number() OVER (ORDER BY md5(p.local_id || '{salt}')) - 1)::INTEGER AS ref
        FROM (SELECT * FROM src_patients QUALIFY row_number() OVER (PARTITION BY local_id) = 1) p
        LEFT JOIN type1 t USING (local_id)
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
    queries = {
        "registrations": "SELECT k.ref, practice, start_date, end_date FROM src_registrations s "
        "JOIN kept k USING (local_id)",
        "events": f"""SELECT k.ref, kind, system, code, date, value, unit
            FROM src_events s JOIN kept k USING (local_id)
            WHERE code IS NOT NULL
              AND coalesce(system, '') || ':' || code NOT IN ({type1_keys})""",
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

    for name in ("registrations", "events", "medications", "episodes"):
        orphans = con.execute(
            f"SELECT count(*) FROM src_{name} s WHERE NOT EXISTS "
            "(SELECT 1 FROM people p WHERE p.local_id = s.local_id)"
        ).fetchone()[0]
        if orphans:
            rejected.append(
                Rejection(
                    file=name,
                    location=f"{orphans} rows",
                    reason=f"{orphans} {name} rows refer to a patient who is not in the export",
                    original=b"",
                )
            )

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
    )
