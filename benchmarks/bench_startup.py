"""How long ``confide`` takes to start: ``--help``, ``version`` and a party's own ``--help``.

Run: ``python benchmarks/bench_startup.py [--repeat 15]``. Each command runs as a new process
(what a person waits for), medians of ``--repeat`` runs. Baselines measured in the same run:

- ``python -c pass``: the interpreter alone;
- ``python -c "import typer"``: the command-line library Confide builds on;
- importing every party's commands at once (what ``confide --help`` cost before party commands
  were loaded only when used).

Target: ``confide --help`` and ``confide version`` under 0.3 s. Wall time and CPU time (user +
system of the child) are both printed: on a shared, loaded machine the wall time includes
waiting for a core, while the CPU time is what the command itself costs.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def median_run(args: list[str], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``python ARGS`` as a fresh process (after a warm-up)."""
    env = _env()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), _cpu()
        subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


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
    for label, (wall, cpu) in figures.items():
        note = f"CPU {cpu * 1000:.0f} ms"
        if label in ("confide --help", "confide version"):
            met = "meets" if wall < TARGET else "MISSES"
            note += f"; {met} the 0.3 s target"
        rows.append((label, f"{wall * 1000:.0f} ms wall", note))
    print_rows(f"Start-up, median of {args.repeat} fresh processes", rows)
    save(
        "startup",
        {
            "repeat": args.repeat,
            "wall_seconds": {k: w for k, (w, _c) in figures.items()},
            "cpu_seconds": {k: c for k, (_w, c) in figures.items()},
            "target": TARGET,
            "load_average": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
