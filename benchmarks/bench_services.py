"""Choice changes and a 10% erasure end to end, through the services beside embedded.

Run: ``python benchmarks/bench_services.py [--patients 1000000] [--changes 200] [--repeats 3]
[--mode both|embedded|services]``. Loopback only. Two figures, each for the embedded
installation (every party in the command's process) and for the services (``confide up``,
each party its own process), in the same run:

- choice changes one at a time, each counted only once its ``choice_changed`` entry is in the
  ledger (changes per second, median over the repeats);
- erasing 10% of a store of ``--patients`` people (built by the project's own generator and
  pipeline): ``confide choices import`` of their share-nothing choices, until every erasure is
  confirmed by every store and its ledger entry landed (seconds, median over the repeats; each
  repeat starts from a fresh copy of the store).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import area_numbers, print_rows, save, services_up, settled

from confide.choices.model import Choice
from confide.common.home import Home
from confide.composition import compose
from confide.demo.pipeline import process_sources
from confide.embedded import Installation
from confide.synth import generate

CHOICES = [Choice.NO_RESEARCH, Choice.NO_PLANNING, Choice.NO_COMMERCIAL]


def build_store(root: Path, patients: int) -> tuple[Path, list[str]]:
    """A synthetic area extracted and ingested the way the demo does it; its NHS numbers."""
    area, home = root / "area", root / "store"
    generate(area, patients=patients, seed=1, fmt="csv")
    with Installation.open(Home.at(home)) as parties:
        process_sources(parties, area, workers=2)
    numbers = area_numbers(area)
    shutil.rmtree(area)
    return home, numbers


def ledger_size(parties: Any) -> int:
    return int(parties.ledger.head().size)


def choice_changes(home: Path, numbers: list[str], timeout: float = 30.0) -> float:
    """Changes per second, each waited for until its ledger entry has landed."""
    with compose(Home.at(home)) as parties:
        parties.choices.set(numbers[0], {Choice.NO_RESEARCH: False}, "online")  # warm up
        size = ledger_size(parties)
        began = time.perf_counter()
        for i, n in enumerate(numbers):
            parties.choices.set(n, {CHOICES[i % 3]: True}, "online")
            size += 1
            give_up = time.monotonic() + timeout
            while ledger_size(parties) < size:
                if time.monotonic() > give_up:
                    raise SystemExit("a choice change never reached the ledger")
                time.sleep(0.002)
        return len(numbers) / (time.perf_counter() - began)


def erase_share(home: Path, numbers: list[str], timeout: float = 3600.0) -> float:
    """Seconds from ``confide choices import`` of share-nothing choices to every erasure
    confirmed by every store and every event in the ledger."""
    today = dt.date.today().isoformat()
    path = home.parent / "share-nothing.csv"
    path.write_text("".join(f"{n},share_nothing,letter,{today}\n" for n in numbers))
    began = time.perf_counter()
    done = confide_run(home, "choices", "import", str(path))
    if done.returncode != 0:
        raise SystemExit(f"choices import failed: {done.stderr[-500:]}")
    settled(home, timeout=timeout)
    return time.perf_counter() - began


def confide_run(home: Path, *args: str) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "confide", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=200, help="Choice changes per repeat.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.1, help="Share of people to erase.")
    parser.add_argument("--mode", choices=["embedded", "services", "both"], default="both")
    parser.add_argument("--base-port", type=int, default=8860)
    args = parser.parse_args()
    print("command: python benchmarks/bench_services.py " + " ".join(sys.argv[1:]))
    modes = ["embedded", "services"] if args.mode == "both" else [args.mode]
    results: dict[str, Any] = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="confide-services-") as folder:
        root = Path(folder)
        began = time.perf_counter()
        store, numbers = build_store(root, args.patients)
        print(f"store of {args.patients:,} patients built in {time.perf_counter() - began:.0f} s")
        leaving = numbers[: int(len(numbers) * args.share)]
        rates: dict[str, list[float]] = {m: [] for m in modes}
        erasures: dict[str, list[float]] = {m: [] for m in modes}
        for r in range(args.repeats):
            for mode in modes:  # interleaved, so both see the same machine
                home = root / "run" / "home"
                shutil.rmtree(home.parent, ignore_errors=True)
                shutil.copytree(store, home, symlinks=True)
                movers = numbers[-args.changes - 1 :]
                if mode == "services":
                    with services_up(home, args.base_port):
                        rates[mode].append(choice_changes(home, movers))
                        erasures[mode].append(erase_share(home, leaving))
                else:
                    rates[mode].append(choice_changes(home, movers))
                    erasures[mode].append(erase_share(home, leaving))
                print(
                    f"  repeat {r + 1} {mode}: {rates[mode][-1]:,.1f} changes/s, "
                    f"erasure {erasures[mode][-1]:,.1f} s"
                )
        shutil.rmtree(root / "run", ignore_errors=True)
    results["changes_per_s"] = {m: statistics.median(v) for m, v in rates.items()}
    results["erasure_s"] = {m: statistics.median(v) for m, v in erasures.items()}
    rows = []
    for mode in modes:
        rate, erase = results["changes_per_s"][mode], results["erasure_s"][mode]
        rows.append((f"{mode}: choice changes", f"{rate:,.1f}/s", "each with its ledger entry"))
        rows.append(
            (
                f"{mode}: erase {len(leaving):,} people",
                f"{erase:,.1f} s",
                f"{args.share:.0%} of {args.patients:,} patients, every store confirmed",
            )
        )
    if len(modes) == 2:
        ratio = results["changes_per_s"]["services"] / results["changes_per_s"]["embedded"]
        rows.append(("services / embedded", f"{ratio:.2f}×", "choice changes per second"))
        ratio = results["erasure_s"]["services"] / results["erasure_s"]["embedded"]
        rows.append(("services / embedded", f"{ratio:.2f}×", "erasure time"))
    print_rows(f"End to end, medians of {args.repeats} (loopback)", rows)
    print(f"\nSaved {save('services', results)}")


if __name__ == "__main__":
    main()
