"""Benchmarks of the choices registry: bulk choice changes and the national check-file clean.

Run: ``python benchmarks/bench_choices.py [--lines 10000000] [--changes 100000] [--repeat 3]``.
Uses the configured operational store (SQLite in a temporary folder unless
``CONFIDE_DATABASE_URL`` is set). Each figure comes with a same-run baseline:

- changes: a bare ``executemany`` of the same number of rows into a plain SQLite table;
- check: reading the file and counting its lines (the least any cleaner must do).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from confide.choices.check import check_file, opted_out_for
from confide.choices.model import ChangeRequest, Choice
from confide.choices.registry import ChoicesRegistry
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers


def _median(times: list[float]) -> float:
    return statistics.median(times)


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)


def bench_changes(root: Path, numbers: np.ndarray, repeat: int) -> None:
    choices = list(Choice)
    times, base = [], []
    for run in range(repeat):
        registry = ChoicesRegistry.open(Home.at(root / f"changes{run}"))
        requests = [
            ChangeRequest(str(n), {choices[i % 4]: bool(i % 5)}, "letter")
            for i, n in enumerate(numbers)
        ]
        began = time.perf_counter()
        registry.bulk_set(requests, notify=False)
        times.append(time.perf_counter() - began)
        registry.close()
        db = sqlite3.connect(root / f"baseline{run}.db")
        db.execute("CREATE TABLE t (n TEXT, c TEXT, v INTEGER, at TEXT)")
        rows = [(str(n), choices[i % 4].value, i % 5, "2026-01-01") for i, n in enumerate(numbers)]
        began = time.perf_counter()
        with db:
            db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
        base.append(time.perf_counter() - began)
        db.close()
    n = len(numbers)
    print(
        f"apply {n:,} choice changes (bulk_set): median {_median(times):.2f} s "
        f"({n / _median(times):,.0f} changes/s); baseline bare executemany "
        f"{_median(base):.2f} s"
    )


def bench_check(root: Path, lines: int, repeat: int) -> None:
    rng = np.random.default_rng(2)
    pool = generate_test_numbers(min(lines, 2_000_000), rng).astype("S10")
    picks = pool[rng.integers(0, len(pool), size=lines)]
    invalid = rng.choice(lines, size=lines // 1000, replace=False)
    picks[invalid] = b"9434765918"  # 0.1% fail the modulus 11 check
    path = root / "check.txt"
    path.write_bytes(np.char.add(picks, b",\n").tobytes())
    registry = ChoicesRegistry.open(Home.at(root / "changes0"))
    times, base, load = [], [], []
    summary = None
    for _ in range(repeat):
        began = time.perf_counter()
        held, _terms = opted_out_for(registry, "research", "academic")
        load.append(time.perf_counter() - began)
        began = time.perf_counter()
        summary = check_file(path, held, _Sink(), None)
        times.append(time.perf_counter() - began)
        began = time.perf_counter()
        path.read_bytes().count(b"\n")
        base.append(time.perf_counter() - began)
    registry.close()
    rate = lines / _median(times)
    print(
        f"check {lines:,} NHS numbers: median {_median(times):.2f} s "
        f"({rate / 1e6:.1f} M numbers/s, target > 1 M/s); "
        f"opted-out set ({len(held):,} people) loaded in "
        f"{_median(load):.2f} s; baseline read + count lines {_median(base):.2f} s"
    )
    print(
        f"  last run: {summary.included:,} included, {summary.excluded:,} excluded, "
        f"{summary.invalid:,} invalid"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        numbers = generate_test_numbers(args.changes, np.random.default_rng(1))
        bench_changes(root, numbers, args.repeat)
        bench_check(root, args.lines, args.repeat)


if __name__ == "__main__":
    main()
