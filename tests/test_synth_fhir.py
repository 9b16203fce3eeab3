"""FHIR exports of the synthetic area: NDJSON, JSON Bundles and XML carry the CSV's content."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import orjson
import pytest
from lxml import etree

from confide.common.codes import NHS_NUMBER_SYSTEM, ODS_SYSTEM, PREFERRED_URI, verhoeff_ok
from confide.synth import generate

FHIR = "{http://hl7.org/fhir}"
GP_TYPES = {"Patient", "EpisodeOfCare", "Condition", "Observation", "MedicationStatement",
            "Procedure", "AllergyIntolerance", "Immunization"}  # fmt: skip
TRUST_TYPES = {"Patient", "Encounter", "Condition", "Procedure"}


def csv_rows(folder: Path, name: str) -> int:
    with (folder / f"{name}.csv").open(encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


@pytest.fixture(scope="module")
def areas(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fhir")
    args = {"patients": 400, "seed": 21, "practices": 2, "trusts": 1}
    generate(root / "ndjson", fmt="fhir", **args)
    generate(root / "csv", fmt="csv", **args)
    return root / "ndjson", root / "csv"


def load_ndjson(folder: Path) -> dict[str, list[dict]]:
    out = {}
    for path in folder.glob("*.ndjson"):
        out[path.stem] = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return out


def references(obj: object) -> list[str]:
    """Every ``reference`` value anywhere inside ``obj``."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "reference" and isinstance(value, str):
                found.append(value)
            else:
                found += references(value)
    elif isinstance(obj, list):
        for value in obj:
            found += references(value)
    return found


def test_ndjson_files_hold_their_own_resource_type_and_references_resolve(areas) -> None:
    ndjson, _ = areas
    for source in sorted(p.parent for p in ndjson.glob("*/source.json")):
        meta = orjson.loads((source / "source.json").read_bytes())
        assert meta["format"] == "fhir-ndjson"
        files = load_ndjson(source)
        assert set(files) == (GP_TYPES if meta["kind"] == "practice" else TRUST_TYPES)
        known = set()
        for kind, resources in files.items():
            assert all(r["resourceType"] == kind for r in resources)
            known |= {f"{kind}/{r['id']}" for r in resources}
        for resources in files.values():
            for res in resources:
                for ref in references(res):
                    assert ref in known, (source.name, ref)


def test_ndjson_carries_exactly_the_csv_content(areas) -> None:
    ndjson, csv_area = areas
    for source in sorted(p.parent for p in ndjson.glob("*/source.json")):
        files = load_ndjson(source)
        twin = csv_area / source.name
        assert len(files["Patient"]) == csv_rows(twin, "patients")
        if (twin / "events.csv").exists():
            events = sum(
                len(files[t])
                for t in (
                    "Observation",
                    "Condition",
                    "Procedure",
                    "AllergyIntolerance",
                    "Immunization",
                )
            )
            assert events == csv_rows(twin, "events")
            assert len(files["MedicationStatement"]) == csv_rows(twin, "medications")
            assert len(files["EpisodeOfCare"]) == csv_rows(twin, "registrations")
        else:
            encounters = files["Encounter"]
            assert len(encounters) == csv_rows(twin, "episodes")
            assert all(e["class"]["code"] == "IMP" for e in encounters)
            ranked = [d for e in encounters for d in e.get("diagnosis", [])]
            assert len(ranked) == len(files["Condition"])
            assert all(c["encounter"] for c in files["Condition"] + files["Procedure"])


def test_ndjson_resources_look_like_uk_core(areas) -> None:
    ndjson, _ = areas
    practice = next(p.parent for p in ndjson.glob("B*/source.json"))
    files = load_ndjson(practice)
    patient = files["Patient"][0]
    assert patient["identifier"][0]["system"] == NHS_NUMBER_SYSTEM
    assert patient["generalPractitioner"][0]["identifier"] == {
        "system": ODS_SYSTEM,
        "value": practice.name,
    }
    assert patient["text"]["div"].startswith("<div xmlns=")
    codings = [c for r in files["Observation"] + files["Condition"] for c in r["code"]["coding"]]
    assert {c["system"] for c in codings} == {PREFERRED_URI["snomed"]}
    assert all(verhoeff_ok(c["code"]) for c in codings)
    meds = files["MedicationStatement"]
    assert {m["medicationCodeableConcept"]["coding"][0]["system"] for m in meds} == {
        PREFERRED_URI["dmd"]
    }
    assert all(m["dosage"][0]["text"] for m in meds)
    valued = [o for o in files["Observation"] if "valueQuantity" in o]
    assert valued and all(o["valueQuantity"]["system"] == PREFERRED_URI["ucum"] for o in valued)
    assert any("note" in r for r in files["Condition"])


def test_bundles_group_patients_and_resolve_by_full_url(tmp_path: Path) -> None:
    generate(tmp_path / "a", patients=700, seed=5, fmt="fhir-bundle", practices=1, trusts=1)
    practice = next(p.parent for p in (tmp_path / "a").glob("B*/source.json"))
    bundles = sorted(practice.glob("*.json"))
    bundles = [b for b in bundles if b.name != "source.json"]
    assert len(bundles) == 2
    patients = Counter()
    for path in bundles:
        bundle = orjson.loads(path.read_bytes())
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        urls = {e["fullUrl"] for e in bundle["entry"]}
        assert all(url.startswith("urn:uuid:") for url in urls)
        kinds = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
        assert kinds["Patient"] <= 500
        for entry in bundle["entry"]:
            for ref in references(entry["resource"]):
                assert ref in urls
            if entry["resource"]["resourceType"] == "Patient":
                patients[entry["resource"]["id"]] += 1
    assert len(patients) == 700 and set(patients.values()) == {1}


def test_xml_bundles_parse_and_hold_every_patient(tmp_path: Path) -> None:
    generate(tmp_path / "x", patients=150, seed=9, fmt="fhir-xml", practices=1, trusts=1)
    generate(tmp_path / "c", patients=150, seed=9, fmt="csv", practices=1, trusts=1)
    for source in sorted(p.parent for p in (tmp_path / "x").glob("*/source.json")):
        patients = encounters = 0
        for path in source.glob("*.xml"):
            root = etree.parse(str(path)).getroot()
            assert root.tag == f"{FHIR}Bundle"
            assert root.find(f"{FHIR}type").get("value") == "collection"
            patients += len(root.findall(f"{FHIR}entry/{FHIR}resource/{FHIR}Patient"))
            encounters += len(root.findall(f"{FHIR}entry/{FHIR}resource/{FHIR}Encounter"))
            div = root.find(f".//{FHIR}Patient/{FHIR}text/{{http://www.w3.org/1999/xhtml}}div")
            assert div is not None and div.text
            nhs = root.find(f".//{FHIR}Patient/{FHIR}identifier/{FHIR}system")
            assert nhs is None or nhs.get("value") == NHS_NUMBER_SYSTEM
        twin = tmp_path / "c" / source.name
        assert patients == csv_rows(twin, "patients")
        if (twin / "episodes.csv").exists():
            assert encounters == csv_rows(twin, "episodes")
