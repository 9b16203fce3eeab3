"""Every benchmark runs at a tiny size and prints its figures: a benchmark that no longer runs
fails here, not months later when someone needs its numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from smoke import SMOKE_ARGS  # noqa: E402

SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))


def test_every_benchmark_has_a_smoke_size() -> None:
    assert sorted(SMOKE_ARGS) == SCRIPTS, "add each new benchmark to benchmarks/smoke.py"


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_at_a_tiny_size(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "CONFIDE_BENCH_RESULTS": str(tmp_path / "results")}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *SMOKE_ARGS[script]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip(), "a benchmark prints its figures"
    assert "Traceback" not in done.stderr
