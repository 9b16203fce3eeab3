"""The same records written as CSV, FHIR NDJSON, a FHIR JSON Bundle and FHIR XML read back to
identical canonical tables."""

from __future__ import annotations

import csv
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from confide.common.codes import NHS_NUMBER_SYSTEM, ODS_SYSTEM, PREFERRED_URI
from confide.practice.model import EXTRACT_SCHEMAS
from confide.practice.readers import read_source

FHIR_NS = "http://hl7.org/fhir"
words = st.text(alphabet="ABCXYZ0189 ,'\"&<>", min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and s != ""
)
codes = st.text(alphabet="0123456789ABCDEFGHJKLMNPQRSTUVWXYZ.", min_size=1, max_size=12)
days = st.dates(date(1900, 1, 1), date(2030, 12, 31))
numbers = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)


@st.composite
def exports(draw) -> dict[str, list[dict[str, Any]]]:
    n = draw(st.integers(1, 4))
    patients = [
        {
            "local_id": f"p{i}",
            "nhs_number": draw(st.from_regex(r"\A9[0-9]{9}\Z")),
            "birth_date": draw(days).isoformat(),
            "postcode": draw(words),
            "sex": draw(st.sampled_from(["male", "female", "other", "unknown"])),
            "death_date": draw(st.none() | days),
        }
        for i in range(n)
    ]
    who = st.sampled_from([p["local_id"] for p in patients])
    events = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["condition", "observation", "procedure"]))
        measured = kind == "observation" and draw(st.booleans())
        events.append(
            {
                "local_id": draw(who),
                "kind": kind,
                "system": draw(st.sampled_from(["snomed", "read2"])),
                "code": draw(codes),
                "date": draw(st.none() | days),
                "value": draw(numbers) if measured else None,
                "unit": draw(words) if measured else None,
            }
        )
    meds = []
    for _ in range(draw(st.integers(0, 4))):
        has_qty = draw(st.booleans())
        meds.append(
            {
                "local_id": draw(who),
                "system": "dmd",
                "code": draw(codes),
                "date": draw(days),
                "quantity": draw(numbers) if has_qty else None,
                "quantity_unit": draw(words) if has_qty else None,
            }
        )
    regs = [
        {
            "local_id": p["local_id"],
            "practice": draw(st.sampled_from(["B82001", "Y01234"])),
            "start_date": draw(days),
            "end_date": draw(st.none() | days),
        }
        for p in patients
    ]
    return {"patients": patients, "events": events, "medications": meds, "registrations": regs}


# --- CSV --------------------------------------------------------------------------------


def _cell(v: Any) -> str:
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def write_csv(data: dict, folder: Path) -> None:
    files = {
        "patients.csv": (
            ["patient_id", "nhs_number", "given_name", "birth_date", "sex", "postcode",
             "date_of_death"],
            [[p["local_id"], p["nhs_number"], "Name", p["birth_date"], p["sex"], p["postcode"],
              p["death_date"]] for p in data["patients"]],
        ),
        "events.csv": (
            ["patient_id", "date", "kind", "system", "code", "term", "value", "unit", "note"],
            [[e["local_id"], e["date"], e["kind"], e["system"], e["code"], "a term", e["value"],
              e["unit"], "a, note"] for e in data["events"]],
        ),
        "medications.csv": (
            ["patient_id", "date", "system", "code", "term", "dosage_text", "quantity",
             "quantity_unit"],
            [[m["local_id"], m["date"], m["system"], m["code"], "t", "d", m["quantity"],
              m["quantity_unit"]] for m in data["medications"]],
        ),
        "registrations.csv": (
            ["patient_id", "practice_ods", "start_date", "end_date"],
            [[r["local_id"], r["practice"], r["start_date"], r["end_date"]]
             for r in data["registrations"]],
        ),
    }  # fmt: skip
    for name, (header, rows) in files.items():
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows([[_cell(v) for v in row] for row in rows])


# --- FHIR resources (shared by NDJSON, Bundle and XML) -------------------------------------


def _coding(system: str, code: str) -> dict:
    return {"coding": [{"system": PREFERRED_URI[system], "code": code, "display": "text"}]}


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def resources(data: dict, ref) -> list[dict]:
    out: list[dict] = []
    for p in data["patients"]:
        out.append(
            _drop_none(
                {
                    "resourceType": "Patient",
                    "id": p["local_id"],
                    "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": p["nhs_number"]}],
                    "name": [{"family": "Secret", "given": ["Name"]}],
                    "gender": p["sex"],
                    "birthDate": p["birth_date"],
                    "deceasedDateTime": p["death_date"] and p["death_date"].isoformat(),
                    "address": [{"use": "home", "line": ["1 Road"], "postalCode": p["postcode"]}],
                }
            )
        )
    for r in data["registrations"]:
        period = _drop_none(
            {
                "start": r["start_date"].isoformat(),
                "end": r["end_date"] and r["end_date"].isoformat(),
            }
        )
        out.append(
            {
                "resourceType": "EpisodeOfCare",
                "patient": {"reference": ref(r["local_id"])},
                "managingOrganization": {"identifier": {"system": ODS_SYSTEM,
                                                        "value": r["practice"]}},
                "period": period,
            }
        )  # fmt: skip
    date_field = {"condition": "onsetDateTime", "observation": "effectiveDateTime",
                  "procedure": "performedDateTime"}  # fmt: skip
    for e in data["events"]:
        res = {
            "resourceType": e["kind"].capitalize(),
            "subject": {"reference": ref(e["local_id"])},
            "code": _coding(e["system"], e["code"]),
            date_field[e["kind"]]: e["date"] and e["date"].isoformat(),
        }
        if e["value"] is not None:
            res["valueQuantity"] = {"value": e["value"], "unit": e["unit"]}
        out.append(_drop_none(res))
    for m in data["medications"]:
        res = {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": _coding("dmd", m["code"]),
            "subject": {"reference": ref(m["local_id"])},
            "authoredOn": m["date"].isoformat(),
        }
        if m["quantity"] is not None:
            res["dispenseRequest"] = {
                "quantity": {"value": m["quantity"], "unit": m["quantity_unit"]}
            }
        out.append(res)
    return out


def write_ndjson(data: dict, folder: Path) -> None:
    by_type: dict[str, list[bytes]] = {}
    for res in resources(data, lambda pid: f"Patient/{pid}"):
        by_type.setdefault(res["resourceType"], []).append(orjson.dumps(res))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")


def bundle(data: dict) -> dict:
    urls = {p["local_id"]: f"urn:uuid:{uuid.uuid4()}" for p in data["patients"]}
    entries = []
    for res in resources(data, lambda pid: urls[pid]):
        url = urls[res["id"]] if res["resourceType"] == "Patient" else f"urn:uuid:{uuid.uuid4()}"
        entries.append({"fullUrl": url, "resource": res})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def write_bundle(data: dict, folder: Path) -> None:
    (folder / "bundle.json").write_bytes(orjson.dumps(bundle(data)))


def _to_xml(parent: etree._Element, name: str, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _to_xml(parent, name, item)
        return
    el = etree.SubElement(parent, f"{{{FHIR_NS}}}{name}")
    if isinstance(value, dict):
        if "resourceType" in value:
            el = etree.SubElement(el, f"{{{FHIR_NS}}}{value['resourceType']}")
        for key, child in value.items():
            if key != "resourceType":
                _to_xml(el, key, child)
    elif isinstance(value, bool):
        el.set("value", "true" if value else "false")
    else:
        el.set("value", repr(value) if isinstance(value, float) else str(value))


def write_xml(data: dict, folder: Path) -> None:
    doc = bundle(data)
    root = etree.Element(f"{{{FHIR_NS}}}Bundle", nsmap={None: FHIR_NS})
    _to_xml(root, "type", doc["type"])
    _to_xml(root, "entry", doc["entry"])
    (folder / "bundle.xml").write_bytes(etree.tostring(root, xml_declaration=True,
                                                       encoding="UTF-8"))  # fmt: skip


WRITERS = {"csv": write_csv, "fhir-ndjson": write_ndjson, "fhir-bundle": write_bundle,
           "fhir-xml": write_xml}  # fmt: skip


def canonical(folder: Path) -> dict[str, list]:
    result = read_source(folder, source="B82001", kind="practice")
    assert result.extract.rejected == []
    return {
        name: sorted(result.extract.table(name).to_pylist(), key=lambda r: repr(sorted(r.items())))
        for name in ("patients", "registrations", "events", "medications", "episodes")
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=exports())
def test_all_formats_read_to_the_same_tables(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("rt")
    tables = {}
    for fmt, write in WRITERS.items():
        folder = base / fmt
        folder.mkdir()
        write(data, folder)
        tables[fmt] = canonical(folder)
    expected = {
        name: sorted(
            ({**dict.fromkeys(EXTRACT_SCHEMAS[name].names), **r} for r in data.get(name, [])),
            key=lambda r: repr(sorted(r.items())),
        )
        for name in ("patients", "registrations", "events", "medications", "episodes")
    }
    for fmt, got in tables.items():
        assert got == expected, fmt
