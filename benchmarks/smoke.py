"""Each benchmark at a tiny size, so that none can rot unseen: the test suite runs every entry
here (``tests/test_benchmarks_smoke.py``) and fails when a ``bench_*.py`` has none.

The sizes prove that a script runs end to end and prints its figures; they measure nothing.
"""

from __future__ import annotations

SMOKE_ARGS: dict[str, list[str]] = {
    "bench_choices.py": ["--changes", "200", "--lines", "2000", "--repeat", "1"],
    "bench_ledger.py": ["--entries", "300", "--batch", "100", "--proofs", "20"],
    "bench_linkage.py": ["--patients", "2000"],
    "bench_pipeline.py": ["--patients", "2000", "--repeats", "1", "--hmac-numbers", "10000"],
    "bench_queries.py": ["--patients", "3000", "--repeats", "1"],
    "bench_spark.py": ["--patients", "2000", "--repeats", "1", "--memory", "768m"],
    "bench_witness.py": ["--appends", "20"],
    "bench_rollout.py": ["--patients", "200"],
    "bench_startup.py": ["--repeat", "2"],
    "bench_services.py": ["--patients", "1000", "--changes", "10", "--repeats", "1"],
    "bench_person_index.py": ["--people", "2000", "--calls", "10", "--repeat", "1"],
    "bench_events.py": ["--changes", "10", "--bulk", "100"],
    "bench_faults.py": ["--runs", "4", "--patients", "100", "--mode", "both"],
    "bench_web_load.py": [
        "--home",
        "load-home",
        "--patients",
        "300",
        "--users",
        "5",
        "--seconds",
        "5",
        "--query-seconds",
        "2",
    ],
    "bench_fuzz.py": [
        "--home",
        "fuzz-home",
        "--patients",
        "300",
        "--examples",
        "5",
        "--api-examples",
        "2",
        "--api-seconds",
        "30",
    ],
}
