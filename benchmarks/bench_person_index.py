"""Benchmark of the pseudonymiser's person index, opened per call so processes take turns.

Run: ``python benchmarks/bench_person_index.py [--people 200000] [--calls 200] [--repeat 3]``.

The index is opened only while a call works on it (under a lock file), so a CLI command and a
running server can share a home. This measures what that costs a small call (one person's
pseudonym, as the TRE's exclusions and erasures ask), beside the same-run baseline: the same
calls with the index held open throughout, as when it stayed open for the process's life.
A busy process keeps the index between calls (up to ``Pseudonymiser.HOLD`` seconds at a
stretch), so only a call after an idle pause pays the full opening.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.pseudonymiser import Pseudonymiser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home.at(Path(tmp) / "home")
        numbers = [str(n) for n in generate_test_numbers(args.people, np.random.default_rng(3))]
        # Only the index's own cost is measured: nobody shares nothing, no type 1 codes.
        p = Pseudonymiser.open(
            home,
            shares_nothing=lambda numbers: [False] * len(numbers),
            on_type1=lambda changes: None,
        )
        try:
            p.pseudonyms_to_erase(numbers)  # fills the index
            probes = numbers[:: max(1, len(numbers) // args.calls)][: args.calls]
            modes = {
                "opened per call (every call after an idle pause)": (0.0, 0.0),
                "busy (calls back to back, default hold and idle)": (p.HOLD, p.IDLE),
                "held open throughout (baseline)": (1e9, 1e9),
            }
            figures: dict[str, list[float]] = {name: [] for name in modes}
            for _ in range(args.repeat):
                for name, (hold, idle) in modes.items():
                    p.HOLD, p.IDLE = hold, idle
                    p.close()
                    start = time.perf_counter()
                    for n in probes:
                        p.pseudonyms_for([n])
                    figures[name].append((time.perf_counter() - start) / len(probes))
        finally:
            p.close()
    print(f"person index of {args.people:,} people, {len(probes)} single-person calls")
    for name, times in figures.items():
        print(f"  {name:52s}: {statistics.median(times) * 1e3:8.2f} ms per call")


if __name__ == "__main__":
    main()
