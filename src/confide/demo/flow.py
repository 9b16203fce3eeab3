"""Run the whole flow: synthesise an area, extract every source, pseudonymise, ingest, summarise.

Every party runs in this process with its own folder and keys, talking only through the public
interfaces they would use across a network.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from confide.common.home import Home
from confide.demo.pipeline import Progress, process_sources
from confide.demo.seed import seed as seed_parties
from confide.demo.witnesses import demo_witnesses
from confide.embedded import Installation
from confide.hub.ingest import Hub
from confide.ledger.api import cosigners


def _scalar(result: Any) -> Any:
    """The first column of a query's only row (0 when it gives none)."""
    row = result.fetchone()
    return row[0] if row else 0


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
    # People a trust sent minus those excluded by their own choice (their records were never
    # meant to link): the rest either link to a GP-registered person or wait for linkage.
    summaries = [catalog["ingested"][catalog["sources"][ods]["submission_id"]] for ods in trusts]
    submitted = sum(
        s.get("submitted_patients", 0) - s.get("excluded_by_choice", 0) for s in summaries
    )
    if not submitted:
        return None
    con = hub.records.connect()
    listing = ", ".join(f"'{t}'" for t in trusts)
    linked = _scalar(
        con.execute(
            f"""SELECT count(*) FROM (SELECT DISTINCT pseudonym, source FROM patient_sources
            WHERE source IN ({listing})) h
            WHERE EXISTS (SELECT 1 FROM registrations g WHERE g.pseudonym = h.pseudonym)"""
        )
    )
    return round(linked / submitted, 4)


QUALITY_FIELDS = ("source", "submitted", "linked", "by_nhs_number", "probabilistic",
                  "linked_later", "in_review", "pending", "linkage_rate",
                  "estimated_false_match_rate")  # fmt: skip


def linkage_by_source(parties: Installation) -> list[dict[str, Any]]:
    """The pseudonymiser's linkage quality for each source (counts and rates only)."""
    return [{k: q[k] for k in QUALITY_FIELDS} for q in parties.pseudonymiser.linkage_quality()]


def run_demo(
    home: Home,
    *,
    patients: int = 20_000,
    seed: int = 2026,
    from_dir: Path | None = None,
    on_progress: Progress | None = None,
    workers: int = 2,
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
    demo_witnesses(home)  # before any entry, so every checkpoint is cosigned
    parties = Installation.open(home)
    hub = parties.hub
    try:
        t1 = time.perf_counter()
        done = process_sources(parties, area, workers=workers, on_progress=on_progress)
        seconds.update(done.seconds)
        seconds["extract_to_ingest_wall"] = time.perf_counter() - t1
        totals = done.counts
        con = hub.records.connect()
        people = _scalar(con.execute("SELECT count(DISTINCT pseudonym) FROM patients"))
        summary = {
            "home": str(home.root),
            "sources": totals["sources"],
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
            "linkage": linkage_by_source(parties),
            "ledger_entries": parties.ledger.head().size,
        }
        t2 = time.perf_counter()
        seeded = seed_parties(parties, area)
        seconds["seed"] = time.perf_counter() - t2
        summary["projects"] = sorted(seeded["access"]["projects"])
        summary["identity_check_enrolled"] = seeded["demographics"]
        summary["checkpoint_cosigned_by"] = cosigners(parties.ledger.checkpoint().text)
    finally:
        parties.close()
    seconds["total"] = time.perf_counter() - t0
    summary["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return summary
