"""Records waiting to be linked, and those linked later.

A record without a usable NHS number that matches nobody closely enough waits in
``pending_linkage`` with the identifiers it came with and the reason. When a later
submission brings its person (or changes what is known about them), or a reviewer confirms a
match, it moves to ``linkage_resolved``: the pseudonym, the match weight and coarse
demographics only (its identifiers are deleted). Each resolution has a sequence number, so
the hub can ask for those after the last one it applied and add the record's rows then.

Only a source's latest submission keeps pending records: a newer one replaces the older
snapshot at the hub, so the older one's records would link to nothing there.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from confide.common.clock import naive_utcnow
from confide.pseudonymiser import demographics
from confide.pseudonymiser.linkage.db import run, with_table


def record_id(alias: str = "") -> str:
    """SQL for a pending record's id in linkage (``submission:ref``, unique everywhere)."""
    at = f"{alias}." if alias else ""
    return f"{at}submission_id || ':' || CAST({at}ref AS VARCHAR)"


RECORD_ID = record_id()


class PendingRecords:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def hold(self, source: str, submission_id: str, rows: pa.Table) -> None:
        """Keep ``rows`` (ref, nhs_number, birth_date, postcode, sex, reason) until linked."""
        if rows.num_rows:
            with_table(
                self.con,
                "held",
                rows,
                "INSERT OR REPLACE INTO pending_linkage SELECT ?, ?, ref, nhs_number, "
                "birth_date, postcode, sex, reason, ? FROM held",
                [source, submission_id, naive_utcnow()],
            )

    def forget_superseded(self, source: str, submission_id: str) -> None:
        """Drop the source's records from its earlier submissions (and their review items)."""
        for table in ("pending_linkage", "linkage_review"):
            run(
                self.con,
                f"DELETE FROM {table} WHERE source = ? AND submission_id <> ?",
                [source, submission_id],
            )

    def records(self, excluding: str | None = None) -> pa.Table:
        """Every pending record as linkage input (``record_id``), bar one submission's."""
        return self.con.sql(
            f"SELECT {RECORD_ID} AS record_id, source, submission_id, ref, nhs_number, "
            "birth_date, postcode, sex, reason FROM pending_linkage "
            "WHERE submission_id IS DISTINCT FROM ?",
            params=[excluding],
        ).to_arrow_table()

    def set_reasons(self, reasons: pa.Table) -> None:
        """``(record_id, reason)``: why each record still waits."""
        with_table(
            self.con,
            "reasons",
            reasons,
            f"UPDATE pending_linkage SET reason = r.reason FROM reasons r "
            f"WHERE {RECORD_ID} = r.record_id",
        )

    def resolve(self, links: pa.Table, linked_by: str) -> int:
        """Move records to ``linkage_resolved``: ``links`` has ``record_id``, ``pseudonym``,
        ``match_weight``, ``probability``. Returns how many moved."""
        rows = with_table(
            self.con,
            "links",
            links,
            f"SELECT p.source, p.submission_id, p.ref, l.pseudonym, l.match_weight, "
            f"l.probability, p.birth_date, p.postcode, p.sex FROM pending_linkage p "
            f"JOIN links l ON l.record_id = {RECORD_ID}",
        )
        if rows.num_rows == 0:
            return 0
        year, month = demographics.birth_year_month(rows.column("birth_date"))
        coarse = rows.select(
            ["source", "submission_id", "ref", "pseudonym", "match_weight", "probability"]
        )
        for name, column in (
            ("birth_year", year),
            ("birth_month", month),
            ("sex", demographics.sexes(rows.column("sex"))),
            ("area", demographics.districts(rows.column("postcode"))),
        ):
            coarse = coarse.append_column(name, column)
        with_table(
            self.con,
            "coarse",
            coarse,
            "INSERT OR REPLACE INTO linkage_resolved (source, submission_id, ref, pseudonym, "
            "match_weight, probability, linked_by, birth_year, birth_month, sex, area, "
            "resolved_at) SELECT source, submission_id, ref, pseudonym, match_weight, "
            "probability, ?, birth_year, birth_month, sex, area, ? FROM coarse",
            [linked_by, naive_utcnow()],
        )
        for table in ("pending_linkage", "linkage_review"):
            with_table(
                self.con,
                "coarse",
                coarse,
                f"DELETE FROM {table} t USING coarse c "
                "WHERE t.submission_id = c.submission_id AND t.ref = c.ref",
            )
        return coarse.num_rows

    def resolutions(self, after: int) -> pa.Table:
        """Records linked later, in order, with a sequence number above ``after``."""
        return self.con.sql(
            "SELECT seq, source, submission_id, ref, pseudonym, birth_year, birth_month, sex, "
            "area, match_weight, probability, linked_by FROM linkage_resolved WHERE seq > ? "
            "ORDER BY seq",
            params=[after],
        ).to_arrow_table()

    def count(self) -> int:
        return int(run(self.con, "SELECT count(*) FROM pending_linkage")[0][0])
