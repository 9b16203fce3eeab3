"""The clerical review queue: possible matches a person decides, inside the pseudonymiser.

A pending record whose best candidate is more likely than not to be its person, but not sure
enough to link (see ``model``), waits here. The pseudonymiser's reviewers see the record's
identifiers beside the candidate's (this is the one place anyone sees them, through the
pseudonymiser's own CLI) and decide: a match links the record (the hub gets its rows as for
any later link); "not a match" is recorded with the reviewer's name and never suggested again.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from confide.common.clock import naive_utcnow
from confide.common.errors import NotFound
from confide.pseudonymiser.linkage.db import run, with_table
from confide.pseudonymiser.linkage.pending import RECORD_ID, record_id

_ITEM = f"""
SELECT q.id, q.source, q.queued_at, q.match_weight, q.probability, q.runner_up,
       {record_id("q")} AS record_id,
       r.nhs_number AS record_nhs_number, r.birth_date AS record_birth_date,
       r.sex AS record_sex, r.postcode AS record_postcode, r.reason,
       q.candidate, c.nhs_number AS candidate_nhs_number,
       CAST(c.birth_date AS VARCHAR) AS candidate_birth_date, c.sex AS candidate_sex,
       c.postcode AS candidate_postcode, c.postcodes AS candidate_postcodes
FROM linkage_review q
JOIN pending_linkage r ON r.submission_id = q.submission_id AND r.ref = q.ref
LEFT JOIN linkage_people c ON c.pseudonym = q.candidate
"""


class ReviewQueue:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def queue(self, items: pa.Table) -> None:
        """Add or refresh items: ``record_id``, ``person_id`` (the candidate),
        ``match_weight``, ``probability``, ``runner_up``."""
        with_table(
            self.con,
            "items",
            items,
            f"""INSERT INTO linkage_review (source, submission_id, ref, candidate, match_weight,
                                            probability, runner_up, queued_at)
                SELECT p.source, p.submission_id, p.ref, i.person_id, i.match_weight,
                       i.probability, i.runner_up, ?
                FROM items i JOIN pending_linkage p ON {RECORD_ID} = i.record_id
                ON CONFLICT (submission_id, ref) DO UPDATE SET
                    candidate = excluded.candidate, match_weight = excluded.match_weight,
                    probability = excluded.probability, runner_up = excluded.runner_up""",
            [naive_utcnow()],
        )

    def withdraw(self, record_ids: pa.Table) -> None:
        """Take records off the queue (a later record made them certain, or unlikely)."""
        with_table(
            self.con,
            "gone",
            record_ids.select(["record_id"]),
            f"DELETE FROM linkage_review WHERE {RECORD_ID} IN (SELECT record_id FROM gone)",
        )

    def items(self, limit: int = 50) -> list[dict[str, Any]]:
        """The oldest items first, each with both sets of identifiers."""
        return _dicts(self.con, f"{_ITEM} ORDER BY q.queued_at, q.id LIMIT ?", [limit])

    def item(self, item_id: int) -> dict[str, Any]:
        found = _dicts(self.con, f"{_ITEM} WHERE q.id = ?", [item_id])
        if not found:
            raise NotFound(
                f"There is no review item {item_id}.",
                hint="List the queue with `confide pseudonymiser review list`.",
            )
        return found[0]

    def count(self) -> int:
        return int(run(self.con, "SELECT count(*) FROM linkage_review")[0][0])

    def record_decision(
        self, item: dict[str, Any], match: bool, reviewer: str, fingerprint: str
    ) -> None:
        """Keep the decision (who, when, which record and person); take the item off the
        queue. ``fingerprint`` identifies the record if its source sends it again."""
        submission_id, ref = item["record_id"].rsplit(":", 1)
        run(
            self.con,
            "INSERT INTO linkage_decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [submission_id, int(ref), fingerprint, item["candidate"],
             "match" if match else "not_a_match", reviewer, naive_utcnow()],
        )  # fmt: skip
        run(self.con, "DELETE FROM linkage_review WHERE id = ?", [item["id"]])

    def decisions(self, decision: str) -> pa.Table:
        """``(fingerprint, person_id)`` of every ``match`` or ``not_a_match`` decided."""
        return self.con.sql(
            "SELECT DISTINCT fingerprint, candidate AS person_id FROM linkage_decisions "
            "WHERE decision = ?",
            params=[decision],
        ).to_arrow_table()


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return con.sql(sql, params=params).to_arrow_table().to_pylist()
