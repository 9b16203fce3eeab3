"""The TRE's memory limit holds: a query's aggregation, run under the lock-down every query gets,
grows the process by about its limit and no more; it is stopped when it needs more.

Each run is a separate process (``tests/tre_probes/memory_probe.py``), so its peak memory is its
own. The same query without the limit is the control: it shows the query really needs several
times the limit, so the bound is the limit's doing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).parent / "tre_probes" / "memory_probe.py"
ROWS = 6_000_000  # about 1.2 GB of person-level values


def probe(limit: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(PROBE), limit, str(ROWS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_query_grows_the_process_by_its_memory_limit_and_no_more() -> None:
    bounded = probe("256MB")
    unbounded = probe("8GB")
    grown = bounded["peak_mb"] - bounded["before_mb"]
    assert grown < 256 * 1.5, bounded  # the limit, with DuckDB's own bookkeeping beside it
    assert bounded["outcome"] in ("stopped", "finished")
    # The control: without the limit the same query takes far more.
    assert unbounded["peak_mb"] - unbounded["before_mb"] > 3 * 256, unbounded
