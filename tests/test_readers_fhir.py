"""FHIR JSON Bundles, single resources and NDJSON: references, linking, damage, wrong types."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from confide.common.codes import NHS_NUMBER_SYSTEM, ODS_SYSTEM, PREFERRED_URI
from confide.practice.readers import read_source

SCT, READ2, ICD10, OPCS4, DMD = (PREFERRED_URI[s] for s in ("snomed", "read2", "icd10", "opcs4",
                                                             "dmd"))  # fmt: skip


def concept(*codings: tuple[str, str]) -> dict:
    return {"coding": [{"system": s, "code": c, "display": "free text"} for s, c in codings]}


def patient(pid: str = "p1", **extra) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {"system": "https://fhir.example/local", "value": "L1"},
            {"system": NHS_NUMBER_SYSTEM, "value": "9990000018"},
        ],
        "name": [{"family": "Never", "given": ["Read"]}],
        "gender": "female",
        "birthDate": "1980-05-06",
        "address": [
            {"use": "work", "postalCode": "LS1 1AA"},
            {"use": "home", "postalCode": "LS2 2BB"},
        ],
        **extra,
    }


def bundle(*entries: tuple[str | None, dict], btype: str = "collection") -> dict:
    return {
        "resourceType": "Bundle",
        "type": btype,
        "entry": [({"fullUrl": url} if url else {}) | {"resource": r} for url, r in entries],
    }


def write(folder: Path, name: str, doc) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(doc if isinstance(doc, bytes) else orjson.dumps(doc))


def read(folder: Path):
    return read_source(folder, source="B82001")


def test_bundle_resolves_urn_uuid_and_relative_references(tmp_path: Path):
    doc = bundle(
        ("urn:uuid:aaa", patient("p1")),
        (
            None,
            {
                "resourceType": "Condition",
                "subject": {"reference": "urn:uuid:aaa"},
                "code": concept(("http://loinc.org", "1-1"), (SCT, "44054006")),
                "onsetDateTime": "2020-01-02T10:00:00+01:00",
            },
        ),
        (
            None,
            {
                "resourceType": "Procedure",
                "subject": {"reference": "https://server.example/fhir/Patient/p1/_history/2"},
                "code": concept((SCT, "80146002")),
                "performedPeriod": {"start": "2021-03-04"},
            },
        ),
        btype="transaction",
    )
    write(tmp_path, "b.json", doc)
    result = read(tmp_path)
    [person] = result.extract.table("patients").to_pylist()
    assert person["local_id"] == "p1" and person["nhs_number"] == "9990000018"
    assert person["postcode"] == "LS2 2BB"  # the home address wins
    events = result.extract.table("events").to_pylist()
    assert [(e["local_id"], e["kind"], e["code"], e["date"]) for e in events] == [
        ("p1", "condition", "44054006", date(2020, 1, 2)),
        ("p1", "procedure", "80146002", date(2021, 3, 4)),
    ]


def test_searchset_and_single_resource_files(tmp_path: Path):
    write(tmp_path, "one.json", patient("p9", deceasedDateTime="2024-02-03T01:00:00Z"))
    write(tmp_path, "two.json", bundle((None, patient("p8")), btype="searchset"))
    people = read(tmp_path).extract.table("patients").to_pylist()
    assert {(p["local_id"], p["death_date"]) for p in people} == {
        ("p9", date(2024, 2, 3)),
        ("p8", None),
    }


def test_read2_and_unknown_systems(tmp_path: Path):
    obs = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2019-05-01",
    }
    write(tmp_path, "a.json", obs | {"code": concept((READ2, "9Nu0"))})
    write(tmp_path, "b.json", obs | {"code": concept(("http://local.example/codes", "X1"))})
    events = read(tmp_path).extract.table("events").to_pylist()
    assert [(e["system"], e["code"]) for e in events] == [("read2", "9Nu0"), (None, "X1")]


def test_inpatient_encounter_takes_its_diagnoses_and_procedures(tmp_path: Path):
    enc = {
        "resourceType": "Encounter",
        "id": "e1",
        "identifier": [{"value": "SPELL-1"}],
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2022-01-01T09:00:00Z", "end": "2022-01-05"},
        "hospitalization": {"admitSource": concept(("x", "19"))},
        "diagnosis": [
            {"condition": {"reference": "urn:uuid:c2"}, "rank": 1},
            {"condition": {"reference": "Condition/c1"}, "rank": 2},
        ],
    }
    gp_visit = {"resourceType": "Encounter", "id": "e2", "class": {"code": "AMB"}}

    def cond(cid: str, code: str, enc_ref: str) -> dict:
        return {
            "resourceType": "Condition",
            "id": cid,
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": enc_ref},
            "code": concept((SCT, "1234567"), (ICD10, code)),
        }

    doc = bundle(
        (None, cond("c1", "E11.9", "Encounter/e1")),
        ("urn:uuid:c2", cond("c2", "I21.0", "urn:uuid:e1")),
        (None, cond("c3", "J45", "Encounter/e2")),  # not inpatient: an ordinary event
        (
            None,
            {
                "resourceType": "Procedure",
                "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"},
                "code": concept((OPCS4, "K40.1")),
            },
        ),
        ("urn:uuid:e1", enc),
        (None, gp_visit),
    )
    write(tmp_path, "b.json", doc)
    result = read(tmp_path)
    [episode] = result.extract.table("episodes").to_pylist()
    assert episode == {
        "local_id": "p1",
        "episode_id": "SPELL-1",
        "admission_date": date(2022, 1, 1),
        "discharge_date": date(2022, 1, 5),
        "admission_method": "19",
        "diagnoses": ["I21.0", "E11.9"],  # by rank, not by order in the bundle
        "procedures": ["K40.1"],
    }
    events = result.extract.table("events").to_pylist()
    assert [(e["system"], e["code"]) for e in events] == [("snomed", "1234567")]
    assert result.ignored == {"Encounter (not inpatient)": 1}


def test_medication_references(tmp_path: Path):
    contained = {
        "resourceType": "MedicationRequest",
        "contained": [{"resourceType": "Medication", "id": "m", "code": concept((DMD, "111"))}],
        "medicationReference": {"reference": "#m"},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2023-01-02",
        "dispenseRequest": {"quantity": {"value": 28, "unit": "tablet"}},
    }
    bundled = {
        "resourceType": "MedicationStatement",
        "medicationReference": {"reference": "Medication/m2"},
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": "2023-02-03"},
    }
    missing = bundled | {"medicationReference": {"reference": "Medication/nope"}}
    medication = {
        "resourceType": "Medication",
        "id": "m2",
        "code": concept((SCT, "1"), (DMD, "222")),
    }
    write(tmp_path, "b.json", bundle((None, contained), (None, bundled), (None, missing),
                                     (None, medication)))  # fmt: skip
    result = read(tmp_path)
    meds = result.extract.table("medications").to_pylist()
    assert [
        (m["system"], m["code"], m["date"], m["quantity"], m["quantity_unit"]) for m in meds
    ] == [
        ("dmd", "111", date(2023, 1, 2), 28.0, "tablet"),
        ("dmd", "222", date(2023, 2, 3), None, None),
    ]
    [rejected] = result.extract.rejected
    assert rejected.location == "entry 3 (MedicationStatement)"
    assert orjson.loads(rejected.original)["resource"]["medicationReference"]["reference"] == (
        "Medication/nope"
    )


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        (patient(birthDate=123), "Patient.birthDate must be text"),
        (patient(address={"postalCode": 5}), "Patient.address[0].postalCode must be text"),
        (
            {
                "resourceType": "Observation",
                "subject": {"reference": "Patient/p1"},
                "code": concept((SCT, "1")),
                "valueQuantity": {"value": "abc"},
            },
            "Observation.valueQuantity.value must be a number",
        ),
        (
            {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
             "code": concept((SCT, "1")), "onsetDateTime": "2020-05"},
            "partial date",
        ),
        (
            {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
             "code": concept((SCT, "1")), "onsetDateTime": "2020-02-30"},
            "not a real calendar date",
        ),
        (
            {"resourceType": "Condition", "subject": {"reference": "Group/g1"}},
            "refers to a Group",
        ),
        ({"no": "type"}, "no resourceType"),
    ],
)  # fmt: skip
def test_wrong_types_reject_the_resource(tmp_path: Path, resource: dict, reason: str):
    good = patient("ok")
    write(tmp_path, "b.json", bundle((None, resource), (None, good)))
    result = read(tmp_path)
    [rejected] = result.extract.rejected
    assert reason in rejected.reason
    assert rejected.file == "b.json" and rejected.location.startswith("entry 1")
    assert "9990000018" not in rejected.reason
    assert [p["local_id"] for p in result.extract.table("patients").to_pylist()] == ["ok"]


def test_ndjson_bad_lines_are_rejected_and_the_rest_read(tmp_path: Path):
    lines = [orjson.dumps(patient("p1")), b"", b'{"resourceType": "Patient", "id": "p2", "gen']
    lines.append(orjson.dumps(patient("p3")))
    write(tmp_path, "Patient.ndjson", b"\n".join(lines) + b"\n")
    result = read_source(tmp_path, source="B82001")
    assert result.format == "fhir-ndjson"
    assert [p["local_id"] for p in result.extract.table("patients").to_pylist()] == ["p1", "p3"]
    [rejected] = result.extract.rejected
    assert rejected.location == "line 3" and rejected.original == lines[2] + b"\n"
    assert "not valid JSON" in rejected.reason


def test_truncated_json_file_is_one_rejection_and_other_files_still_read(tmp_path: Path):
    whole = orjson.dumps(bundle((None, patient("p1"))))
    write(tmp_path, "a.json", whole[: len(whole) // 2])
    write(tmp_path, "b.json", patient("p2"))
    result = read(tmp_path)
    [rejected] = result.extract.rejected
    assert rejected.file == "a.json" and rejected.original == whole[: len(whole) // 2]
    assert "is the file complete" in rejected.reason
    assert [p["local_id"] for p in result.extract.table("patients").to_pylist()] == ["p2"]


def test_truncated_xml_file_is_one_rejection(tmp_path: Path):
    write(tmp_path, "a.xml", b'<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><gen')
    write(tmp_path, "b.xml", b'<Patient xmlns="http://hl7.org/fhir"><id value="p2"/></Patient>')
    result = read(tmp_path)
    [rejected] = result.extract.rejected
    assert rejected.file == "a.xml" and "not well-formed XML" in rejected.reason
    assert [p["local_id"] for p in result.extract.table("patients").to_pylist()] == ["p2"]


def test_xml_entities_are_not_expanded(tmp_path: Path):
    doc = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><gender value="&e;"/></Patient>'
    )
    write(tmp_path, "a.xml", doc)
    result = read(tmp_path)
    seen = str(result.extract.table("patients").to_pylist()) + str(result.extract.rejected)
    assert "root:" not in seen
    assert len(result.extract.rejected) == 1


def test_registrations_come_from_episodes_of_care_only(tmp_path):
    """A registered GP named on a hospital's Patient is not registration history."""
    gp = {"identifier": {"system": ODS_SYSTEM, "value": "B82001"}}
    write(tmp_path, "a.json", patient("p1", generalPractitioner=[gp]))
    write(tmp_path, "b.json", patient("p2", generalPractitioner=[gp]))
    eoc = {
        "resourceType": "EpisodeOfCare",
        "patient": {"reference": "Patient/p2"},
        "managingOrganization": {"identifier": {"system": ODS_SYSTEM, "value": "Y01234"}},
        "period": {"start": "2001-02-03"},
    }
    write(tmp_path, "c.json", eoc)
    regs = read(tmp_path).extract.table("registrations").to_pylist()
    assert sorted((r["local_id"], r["practice"], r["start_date"]) for r in regs) == [
        ("p2", "Y01234", date(2001, 2, 3)),
    ]
