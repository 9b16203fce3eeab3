"""How long ``confide`` takes to start: ``--help``, ``version`` and a party's own ``--help``.

Run: ``python benchmarks/bench_startup.py [--repeat 15]``. Each command runs as a new process
(what a person waits for), medians of ``--repeat`` runs. Baselines measured in the same run:

- ``python -c pass``: the interpreter alone;
- ``python -c "import typer"``: the command-line library Confide builds on;
- importing every party's commands at once (what ``confide --help`` cost before party commands
  were loaded only when used).

Target: ``confide --help`` and ``confide version`` under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import print_rows, save

SRC = Path(__file__).resolve().parents[1] / "src"
TARGET = 0.3
EVERY_PARTY = (
    "from confide.cli.lazy import PARTY_COMMANDS, load; "
    "[load(p.module) for p in PARTY_COMMANDS.values()]"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def median_run(args: list[str], repeat: int) -> float:
    """Median wall time of ``python ARGS`` as a fresh process (one warm-up run first)."""
    env = _env()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    figures = {
        "python -c pass": median_run(["-c", "pass"], args.repeat),
        "import typer": median_run(["-c", "import typer"], args.repeat),
        "every party's commands imported": median_run(["-c", EVERY_PARTY], args.repeat),
        "confide --help": median_run(["-m", "confide", "--help"], args.repeat),
        "confide version": median_run(["-m", "confide", "version"], args.repeat),
        "confide choices --help": median_run(["-m", "confide", "choices", "--help"], args.repeat),
    }
    rows = []
    for label, seconds in figures.items():
        note = ""
        if label in ("confide --help", "confide version"):
            note = "meets the 0.3 s target" if seconds < TARGET else "MISSES the 0.3 s target"
        rows.append((label, f"{seconds * 1000:.0f} ms", note))
    print_rows(f"Start-up, median of {args.repeat} fresh processes", rows)
    save("startup", {"repeat": args.repeat, "seconds": figures, "target": TARGET})


if __name__ == "__main__":
    main()
