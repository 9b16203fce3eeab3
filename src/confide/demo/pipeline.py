"""Carrying many sources through the flow: extract at each source, then ingest at the hub.

Sources are independent (in reality each practice extracts on its own machine), so they are
processed a few at a time; the hub serialises only the moment a snapshot is swapped in.
Practices go before trusts, so type 1 objections recorded at practices are known before
hospital records of the same people arrive (erasure covers the other order too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from confide.common.errors import InvalidInput
from confide.embedded import Installation
from confide.practice import keys as practice_keys
from confide.practice.agent import extract

Progress = Callable[[str, int, int], None]


def source_folders(area: Path) -> list[tuple[Path, dict]]:
    """``(folder, source.json)`` for each export under ``area``, practices first."""
    found = []
    for meta_path in sorted(Path(area).glob("*/source.json")):
        found.append((meta_path.parent, orjson.loads(meta_path.read_bytes())))
    if not found:
        raise InvalidInput(
            f"{area} holds no source exports (folders with a source.json).",
            hint="Point --from at the folder `confide synth` wrote.",
        )
    return sorted(found, key=lambda item: (item[1].get("kind") != "practice", item[0].name))


@dataclass
class Totals:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(
        default_factory=lambda: {"extract": 0.0, "pseudonymise": 0.0, "ingest": 0.0}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)


def process_sources(
    parties: Installation,
    area: Path,
    *,
    workers: int = 2,
    on_progress: Progress | None = None,
) -> Totals:
    """Extract and ingest every source under ``area``; stage seconds are summed over sources."""
    sources = source_folders(area)
    home = parties.home
    box_key = parties.pseudonymiser.public_key()
    totals = Totals()
    done = [0]

    def one(folder: Path, meta: dict) -> None:
        ods, kind = meta["ods"], meta["kind"]
        parties.hub.enrol(ods, kind, practice_keys.verify_key(home, ods), meta.get("name"))
        t1 = time.perf_counter()
        made = extract(folder, home, box_key)
        t2 = time.perf_counter()
        result = parties.hub.ingest(made.path)
        t3 = time.perf_counter()
        pseudonymising = result.seconds.get("pseudonymise", 0.0)
        with totals.lock:
            totals.seconds["extract"] += t2 - t1
            totals.seconds["pseudonymise"] += pseudonymising
            totals.seconds["ingest"] += t3 - t2 - pseudonymising
            for key, value in result.counts.items():
                totals.counts[key] = totals.counts.get(key, 0) + int(value)
            done[0] += 1
            if on_progress:
                on_progress(ods, done[0], len(sources))

    for wave in ("practice", "trust"):
        batch = [
            (f, m) for f, m in sources if (m.get("kind") == "practice") == (wave == "practice")
        ]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for future in [pool.submit(one, f, m) for f, m in batch]:
                future.result()
    totals.counts["sources"] = len(sources)
    return totals
