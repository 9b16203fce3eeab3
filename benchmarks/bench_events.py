"""Choice changes end to end: recorded, put in the outbox, relayed, and in the ledger.

Run: ``python benchmarks/bench_events.py [--changes 300] [--bulk 10000] [--backend sqlite]``.
Two figures, each beside a same-run baseline:

- one change at a time through the composition (each change its own transaction, delivered by
  the in-process relay as a ``choice_changed`` ledger entry before the next), against the same
  changes recorded by the bare registry with no events delivered;
- one bulk change of many people, then the relay draining every event into the ledger, against
  the same bulk change by the bare registry.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import operational_store

from confide.choices.model import ChangeRequest, Choice
from confide.choices.registry import ChoicesRegistry
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.composition import compose

CHOICES = [Choice.NO_RESEARCH, Choice.NO_PLANNING, Choice.NO_COMMERCIAL]


def one_at_a_time(root: Path, numbers: list[str]) -> tuple[float, float, int]:
    with compose(Home.at(root / "composed")) as parties:
        parties.choices.set(numbers[0], {Choice.NO_RESEARCH: False}, "online")  # warm up
        began = time.perf_counter()
        for i, n in enumerate(numbers):
            parties.choices.set(n, {CHOICES[i % 3]: True}, "online")
        composed = time.perf_counter() - began
        logged = [e.kind for e in parties.ledger.decoded(0, parties.ledger.head().size)]
    with ChoicesRegistry.open(Home.at(root / "bare")) as registry:
        registry.set(numbers[0], {Choice.NO_RESEARCH: False}, "online")
        began = time.perf_counter()
        for i, n in enumerate(numbers):
            registry.set(n, {CHOICES[i % 3]: True}, "online")
        bare = time.perf_counter() - began
    return composed, bare, logged.count("choice_changed")


def bulk(root: Path, numbers: list[str]) -> tuple[float, float, int]:
    requests = [ChangeRequest(n, {CHOICES[i % 3]: True}, "letter") for i, n in enumerate(numbers)]
    with compose(Home.at(root / "bulk-composed")) as parties:
        began = time.perf_counter()
        parties.choices.bulk_set(requests)  # the relay delivers at once, in runs of one kind
        composed = time.perf_counter() - began
        logged = parties.ledger.head().size
    with ChoicesRegistry.open(Home.at(root / "bulk-bare")) as registry:
        began = time.perf_counter()
        registry.bulk_set(requests, notify=False)
        bare = time.perf_counter() - began
    return composed, bare, logged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    numbers = [str(n) for n in generate_test_numbers(max(args.changes, args.bulk), rng)]
    with operational_store(args.backend), tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        composed, bare, logged = one_at_a_time(root, numbers[: args.changes])
        n = args.changes
        print(
            f"{n} changes one at a time ({args.backend}): {n / composed:,.0f}/s end to end, "
            f"{logged} in the ledger; bare registry {n / bare:,.0f}/s "
            f"({composed / n * 1000:.1f} ms vs {bare / n * 1000:.1f} ms a change)"
        )
        composed, bare, logged = bulk(root, numbers[: args.bulk])
        n = args.bulk
        print(
            f"{n:,} changes in one bulk call ({args.backend}): {composed:.2f} s end to end "
            f"({logged:,} ledger entries); bare registry {bare:.2f} s"
        )


if __name__ == "__main__":
    main()
