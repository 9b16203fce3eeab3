"""Run a memory-hungry aggregation under the TRE's lock-down in this process and print, as JSON,
how it ended and the process's peak memory beside its memory before the query.

Run as a separate process by ``tests/test_tre_memory_limit.py``, so that the peak belongs to this
query alone: ``python memory_probe.py LIMIT ROWS``.
"""

from __future__ import annotations

import json
import resource
import sys

import duckdb

from confide.tre.runner import Limits, lock_down


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    limit, rows = sys.argv[1], int(sys.argv[2])
    con = duckdb.connect()
    lock_down(con, Limits(memory=limit, threads=1))
    before = peak_mb()
    try:
        # A person-level table with a wide value per person, materialised as the aggregation
        # does, then grouped by a key with one group per person: memory grows with the rows.
        con.execute(
            f"CREATE TEMP TABLE __keyed AS SELECT i AS pid, repeat('x', 200) || i::VARCHAR AS v "
            f"FROM range({rows}) r(i)"
        )
        grouped = "SELECT pid, max(v) FROM __keyed GROUP BY pid"
        con.execute(f"SELECT count(*) FROM ({grouped})").fetchall()
        outcome = "finished"
    except duckdb.OutOfMemoryException:
        outcome = "stopped"
    print(json.dumps({"outcome": outcome, "before_mb": before, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
