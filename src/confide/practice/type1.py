"""Type 1 objections: who has dissented from secondary use of their GP record.

The latest of a dissent code and a withdrawal code, by date, is the patient's current state; on
the same day dissent wins (the safe reading). Codes live in ``confide.common.codes``.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from confide.common.codes import TYPE1_DISSENT, TYPE1_WITHDRAWN


def _pairs_sql(pairs: set[tuple[str, str]]) -> str:
    return ", ".join(f"('{system}', '{code}')" for system, code in sorted(pairs))


def type1_states(events: pa.Table) -> pa.Table:
    """One row per patient with any type 1 code: ``local_id``, ``state``, ``date``.

    ``state`` is ``dissent`` (exclude them) or ``withdrawn`` (include them again).
    """
    con = duckdb.connect()
    con.register("events", events)
    return con.sql(
        f"""
        WITH codes(system, code, state) AS (
            SELECT *, 'dissent' FROM (VALUES {_pairs_sql(TYPE1_DISSENT)})
            UNION ALL
            SELECT *, 'withdrawn' FROM (VALUES {_pairs_sql(TYPE1_WITHDRAWN)})
        ),
        marks AS (
            SELECT e.local_id, c.state, e.date,
                   row_number() OVER (
                       PARTITION BY e.local_id
                       ORDER BY e.date DESC NULLS LAST, c.state = 'dissent' DESC
                   ) AS rn
            FROM events e JOIN codes c ON e.system = c.system AND e.code = c.code
        )
        SELECT local_id, state, date FROM marks WHERE rn = 1
        """
    ).to_arrow_table()


def is_type1_code(system: str | None, code: str | None) -> bool:
    pair = (system, code)
    return pair in TYPE1_DISSENT or pair in TYPE1_WITHDRAWN
