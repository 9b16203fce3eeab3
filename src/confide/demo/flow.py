"""Run the whole flow: synthesise an area, extract every source, pseudonymise, ingest, summarise.

Every party runs in this process with its own folder and keys, talking only through the public
interfaces they would use across a network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.embedded import Installation
from confide.hub.ingest import Hub
from confide.practice import keys as practice_keys
from confide.practice.agent import extract

Progress = Callable[[str, int, int], None]


def _sources(area: Path) -> list[Path]:
    """Source folders, practices before trusts (so type 1 objections recorded at practices
    are known before hospital records arrive; later erasure covers the other order)."""
    found = sorted(
        (p.parent for p in area.glob("*/source.json")),
        key=lambda folder: (
            orjson.loads((folder / "source.json").read_bytes())["kind"] != "practice",
            folder.name,
        ),
    )
    if not found:
        raise InvalidInput(
            f"{area} holds no source exports (folders with a source.json).",
            hint="Point --from at the folder `confide synth` wrote.",
        )
    return found


def linkage_rate(hub: Hub) -> float | None:
    """Share of hospital patients submitted whose records link to a GP-registered person."""
    catalog = hub.records.catalog()
    trusts = [
        ods
        for ods, kind in hub.ops.sources().items()
        if kind == "trust" and ods in catalog["sources"]
    ]
    if not trusts:
        return None
    submitted = sum(
        catalog["ingested"][catalog["sources"][ods]["submission_id"]].get("submitted_patients", 0)
        for ods in trusts
    )
    if not submitted:
        return None
    con = hub.records.connect()
    listing = ", ".join(f"'{t}'" for t in trusts)
    linked = con.execute(
        f"""SELECT count(*) FROM (SELECT DISTINCT pseudonym, source FROM patients
            WHERE source IN ({listing})) h
            WHERE EXISTS (SELECT 1 FROM registrations g WHERE g.pseudonym = h.pseudonym)"""
    ).fetchone()[0]
    return round(linked / submitted, 4)


def run_demo(
    home: Home,
    *,
    patients: int = 20_000,
    seed: int = 2026,
    from_dir: Path | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the flow and return the summary the CLI prints."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if from_dir is None:
        from confide.synth import generate

        area = home.root / "area"
        generate(area, patients=patients, seed=seed, fmt="fhir")
        seconds["synth"] = time.perf_counter() - t0
    else:
        area = Path(from_dir)
    sources = _sources(area)

    parties = Installation.open(home)
    hub = parties.hub
    try:
        box_key = parties.pseudonymiser.public_key()
        totals: dict[str, int] = {}
        seconds.update({"extract": 0.0, "pseudonymise": 0.0, "ingest": 0.0})
        for i, folder in enumerate(sources):
            meta = orjson.loads((folder / "source.json").read_bytes())
            ods, kind = meta["ods"], meta["kind"]
            hub.enrol(ods, kind, practice_keys.verify_key(home, ods), meta.get("name"))
            t1 = time.perf_counter()
            made = extract(folder, home, box_key)
            seconds["extract"] += time.perf_counter() - t1
            t2 = time.perf_counter()
            result = hub.ingest(made.path)
            took = time.perf_counter() - t2
            pseudonymising = result.seconds.get("pseudonymise", 0.0)
            seconds["pseudonymise"] += pseudonymising
            seconds["ingest"] += took - pseudonymising
            for key, value in result.counts.items():
                totals[key] = totals.get(key, 0) + int(value)
            if on_progress:
                on_progress(ods, i + 1, len(sources))
        con = hub.records.connect()
        people = con.execute("SELECT count(DISTINCT pseudonym) FROM patients").fetchone()[0]
        summary = {
            "home": str(home.root),
            "sources": len(sources),
            "patients": int(people),
            "events": totals.get("events", 0),
            "medications": totals.get("medications", 0),
            "hospital_episodes": totals.get("hospital_episodes", 0),
            "registrations": totals.get("registrations", 0),
            "deaths": totals.get("deaths", 0),
            "type1_excluded": totals.get("type1_excluded", 0),
            "type1_withdrawn": totals.get("type1_withdrawn", 0),
            "quarantined": totals.get("quarantined", 0),
            "unlinked": totals.get("unlinked", 0),
            "linkage_rate": linkage_rate(hub),
            "ledger_entries": parties.ledger.head().size,
        }
        parties.ledger.checkpoint()
    finally:
        parties.close()
    seconds["total"] = time.perf_counter() - t0
    summary["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return summary
