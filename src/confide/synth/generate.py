"""``generate``: build a synthetic area and write every source's export.

The same seed and arguments always give byte-identical files: every random draw comes from a
stream spawned from the seed, one per stage, and nothing depends on the clock.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from confide.common.errors import FileProblem, InvalidInput
from confide.synth import area as area_mod
from confide.synth import fhir_resources as fr
from confide.synth.clinical import make_clinical
from confide.synth.hospital import (
    IdentifierErrors,
    combine,
    make_episodes,
    outsider_postcodes,
    outsiders_for,
)
from confide.synth.population import NO_DATE, make_population, numbers_for
from confide.synth.tables import AreaData, gp_patient_ids, practice_tables, trust_tables
from confide.synth.truth import Truth
from confide.synth.writers_csv import write_csv_source
from confide.synth.writers_fhir import write_bundles, write_ndjson, write_xml_bundles

Progress = Callable[[str, int, int], None]

# CLI format name → the ``format`` value in source.json (docs/formats.md).
FORMATS = {
    "csv": "csv",
    "fhir": "fhir-ndjson",
    "fhir-bundle": "fhir-bundle",
    "fhir-xml": "fhir-xml",
}
BUNDLE_PATIENTS = 500
XML_BUNDLE_PATIENTS = 200
MAX_PATIENTS = 5_000_000
EXTRACTED_AT = f"{area_mod.EXTRACT_DATE.isoformat()}T02:00:00Z"


def _check(out: Path, patients: int, fmt: str, practices: int | None, trusts: int) -> None:
    if patients < 1:
        raise InvalidInput("--patients must be at least 1.")
    if patients > MAX_PATIENTS:
        raise InvalidInput(f"--patients can be at most {MAX_PATIENTS:,}.")
    if fmt not in FORMATS:
        raise InvalidInput(f"Unknown format {fmt!r}.", hint=f"Choose one of: {', '.join(FORMATS)}.")
    if practices is not None and practices < 1:
        raise InvalidInput("--practices must be at least 1.")
    if trusts < 0:
        raise InvalidInput("--trusts cannot be negative.")
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} is a file, not a folder.", hint="Give --out a folder path.")


def _prepare(out: Path) -> None:
    """Make ``out`` ready: new, empty, or an earlier synthetic area (which is replaced)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        entries = list(out.iterdir())
        if entries and not (out / "area.json").exists():
            raise InvalidInput(
                f"{out} is not empty and does not hold a synthetic area.",
                hint="Choose an empty or new folder for --out.",
            )
        if entries:
            previous = orjson.loads((out / "area.json").read_bytes())
            for source in previous.get("sources", []):
                target = out / str(source.get("ods", ""))
                if source.get("ods") and target.is_dir():
                    shutil.rmtree(target)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except InvalidInput:
        raise
    except (OSError, ValueError) as exc:
        raise FileProblem(
            f"Cannot write to {out.resolve()} ({exc.__class__.__name__}).",
            hint="Choose a folder you can write to for --out.",
        ) from None


def build_area(
    patients: int, seed: int, practices: int | None = None, trusts: int = 2,
    errors: IdentifierErrors | None = None,
) -> AreaData:  # fmt: skip
    """Everything about the area, in memory, before it is cut into sources."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    r_area, r_ids, r_pop, r_clin, r_out, r_hosp = streams
    orgs = area_mod.make_practices(r_area, practices or area_mod.default_practices(patients))
    trust_orgs = area_mod.make_trusts(trusts)
    outsiders_n = outsiders_for(patients) if trusts else 0
    numbers = numbers_for(r_ids, patients + outsiders_n)
    pop = make_population(r_pop, patients, orgs, numbers[:patients])
    clinical = make_clinical(r_clin, pop)
    outsiders = None
    if outsiders_n:
        # People registered elsewhere: one notional practice outside the area.
        elsewhere = area_mod.Organisation("X00000", "", "practice", area_mod.DISTRICTS[0])
        outsiders = make_population(r_out, outsiders_n, [elsewhere], numbers[patients:])
        outsiders.postcode = outsider_postcodes(r_out, outsiders_n)
        outsiders.old_postcode = outsider_postcodes(r_out, outsiders_n)
    people = combine(pop, outsiders)
    trust_data = make_episodes(
        r_hosp, people, clinical.conditions, pop.practice, trusts, errors or IdentifierErrors()
    )
    return AreaData(orgs, trust_orgs, pop, clinical, people, trust_data)


def _source_json(org: area_mod.Organisation, fmt: str) -> bytes:
    doc = {"ods": org.ods, "name": org.name, "kind": org.kind, "format": FORMATS[fmt],
           "extracted_at": EXTRACTED_AT}  # fmt: skip
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def _write_source(
    folder: Path,
    org: area_mod.Organisation,
    tables: dict[str, pa.Table],
    fmt: str,
    gp_ods: list[str | None],
    rng: np.random.Generator,
) -> pa.Array:
    """Write one source's export; returns the patient ids it uses, in table order."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.json").write_bytes(_source_json(org, fmt))
    if fmt == "csv":
        write_csv_source(folder, tables)
        return tables["patients"].column("patient_id").combine_chunks()
    n = tables["patients"].num_rows
    patient_ids = fr.uuids(rng, n)
    ctx = fr.SourceContext(
        ods=org.ods,
        kind=org.kind,
        patient_ids=patient_ids,
        gp_ods=gp_ods,
        ref=fr.ndjson_ref if fmt == "fhir" else fr.bundle_ref,
        rng=rng,
    )
    streams = fr.all_items(ctx, tables)
    if fmt == "fhir":
        write_ndjson(folder, streams)
    elif fmt == "fhir-bundle":
        write_bundles(folder, streams, n, BUNDLE_PATIENTS)
    else:
        write_xml_bundles(folder, streams, n, XML_BUNDLE_PATIENTS)
    return pa.array(patient_ids, pa.string())


def generate(
    out: Path,
    patients: int = 20_000,
    seed: int = 2026,
    fmt: str = "fhir",
    practices: int | None = None,
    trusts: int = 2,
    progress: Progress | None = None,
    errors: IdentifierErrors | None = None,
) -> dict[str, Any]:
    """Write a synthetic area's exports under ``out``; return a summary of what was made."""
    out = Path(out)
    _check(out, patients, fmt, practices, trusts)
    _prepare(out)
    report = progress or (lambda _desc, _done, _total: None)
    report("Building the area", 0, 1)
    data = build_area(patients, seed, practices, trusts, errors)
    report("Building the area", 1, 1)

    sources: list[dict[str, Any]] = []
    total = len(data.practices) + len(data.trusts)
    codes = np.array([p.ods for p in data.practices], dtype=object)
    counts = {"events": 0, "medications": 0, "episodes": 0, "hospital_patients": 0}
    truth = Truth(data.people.fields["nhs"], data.people.registered)
    for k, org in enumerate(data.practices):
        tables = practice_tables(data, k)
        rng = np.random.default_rng([seed, 1, k])
        gp_ods: list[str | None] = [org.ods] * tables["patients"].num_rows
        written = _write_source(out / org.ods, org, tables, fmt, gp_ods, rng)
        truth.add(org, written, np.arange(*data.practice_slice(k)))
        counts["events"] += tables["events"].num_rows
        counts["medications"] += tables["medications"].num_rows
        sources.append(_summary(org, tables))
        report("Writing exports", k + 1, total)
    for t, org in enumerate(data.trusts):
        tables = trust_tables(data, t)
        person = data.trust_data[t].person
        registered = person < data.people.registered
        practice = data.pop.practice[np.where(registered, person, 0)]
        gp: list[str | None] = np.asarray(np.where(registered, codes[practice], None)).tolist()
        rng = np.random.default_rng([seed, 2, t])
        truth.add(org, _write_source(out / org.ods, org, tables, fmt, gp, rng), person)
        counts["episodes"] += tables["episodes"].num_rows
        counts["hospital_patients"] += tables["patients"].num_rows
        sources.append(_summary(org, tables))
        report("Writing exports", len(data.practices) + t + 1, total)

    summary = {
        "seed": seed,
        "format": fmt,
        "extracted_at": EXTRACTED_AT,
        "patients": len(data.pop),
        "deceased": int((data.pop.death != NO_DATE).sum()),
        **counts,
        "type1_dissent": data.clinical.type1_dissent,
        "type1_withdrawn": data.clinical.type1_withdrawn,
        "practices": len(data.practices),
        "trusts": len(data.trusts),
        "sources": sources,
    }
    truth.write(out)  # the answer key, beside the exports and never read by the pipeline
    (out / "area.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    return summary


def _summary(org: area_mod.Organisation, tables: dict[str, pa.Table]) -> dict[str, Any]:
    return {
        "ods": org.ods,
        "name": org.name,
        "kind": org.kind,
        "rows": {name: table.num_rows for name, table in tables.items()},
    }


__all__ = ["FORMATS", "IdentifierErrors", "build_area", "generate", "gp_patient_ids"]
