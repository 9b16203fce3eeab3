"""Linkage quality per source: how many of its records linked, and how many links are likely
wrong.

For each source's latest submission:

- **linkage rate**: records linked to a person (on NHS number, by the model, or later by a
  later record or a reviewer) out of those submitted, leaving out people excluded by their own
  choice (their records were never meant to link).
- **estimated false-match rate**: the expected number of wrong links divided by the links.
  A probabilistic link of probability p is wrong with probability 1 - p (see ``scoring``), so
  the expected number is the sum of 1 - p over them. Links on a valid NHS number are counted
  as right: a valid number that belongs to someone else is not detectable here. The estimate
  is only as good as the model's calibration; the linkage benchmark compares it with the
  true rate on synthetic data.

Counts only: no identifier, pseudonym or record is in a quality report.
"""

from __future__ import annotations

from typing import Any

import duckdb

from confide.common.clock import naive_utcnow
from confide.pseudonymiser.linkage.db import run

_REPORT = """
SELECT q.source, q.submission_id, q.recorded_at, q.submitted, q.excluded, q.by_nhs_number,
       q.probabilistic,
       coalesce(r.resolved, 0) AS linked_later,
       coalesce(v.in_review, 0) AS in_review,
       coalesce(p.pending, 0) - coalesce(v.in_review, 0) AS pending,
       q.expected_false + coalesce(r.expected_false, 0) AS expected_false
FROM linkage_quality q
LEFT JOIN (SELECT submission_id, count(*) AS resolved, sum(1 - probability) AS expected_false
           FROM linkage_resolved GROUP BY submission_id) r USING (submission_id)
LEFT JOIN (SELECT submission_id, count(*) AS in_review FROM linkage_review
           GROUP BY submission_id) v USING (submission_id)
LEFT JOIN (SELECT submission_id, count(*) AS pending FROM pending_linkage
           GROUP BY submission_id) p USING (submission_id)
ORDER BY q.source
"""


class LinkageQuality:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def record(
        self,
        source: str,
        submission_id: str,
        *,
        submitted: int,
        excluded: int,
        by_nhs_number: int,
        probabilistic: int,
        expected_false: float,
    ) -> None:
        run(
            self.con,
            "INSERT OR REPLACE INTO linkage_quality VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source,
                submission_id,
                naive_utcnow(),
                submitted,
                excluded,
                by_nhs_number,
                probabilistic,
                expected_false,
            ],
        )

    def report(self) -> list[dict[str, Any]]:
        """One entry per source, with its rates (None when nothing could link)."""
        return [rates(row) for row in self.con.sql(_REPORT).to_arrow_table().to_pylist()]


def rates(entry: dict[str, Any]) -> dict[str, Any]:
    """Add ``linked``, ``linkage_rate`` and ``estimated_false_match_rate`` to counts."""
    linked = entry["by_nhs_number"] + entry["probabilistic"] + entry["linked_later"]
    eligible = entry["submitted"] - entry["excluded"]
    return {
        **entry,
        "recorded_at": str(entry["recorded_at"]) if entry.get("recorded_at") else None,
        "linked": linked,
        "expected_false": round(float(entry["expected_false"] or 0.0), 4),
        "linkage_rate": round(linked / eligible, 4) if eligible > 0 else None,
        "estimated_false_match_rate": (
            round(float(entry["expected_false"] or 0.0) / linked, 6) if linked else None
        ),
    }
