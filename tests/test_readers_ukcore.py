"""Every official UK Core example that holds data Confide reads comes through, values intact."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from confide.practice.readers import read_source

FIXTURES = Path(__file__).parent / "fixtures" / "uk-core"
FILES = sorted(p.name for p in FIXTURES.glob("*.xml"))
RICHARD = "UKCore-Patient-RichardSmith-Example"

# Rejections that are right: the example itself lacks what Confide needs.
EXPECTED_REJECTIONS = {
    "UKCore-Observation-FingerJointInflamed-Example.xml": "does not say which patient",
    "UKCore-MedicationRequest-EyeDrops-Example.xml": "Medication it refers to is not in",
}


def read_one(name: str, tmp_path: Path):
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(FIXTURES / name, folder / name)
    return read_source(folder, source="B82001")


def rows(result, table: str) -> list[dict]:
    return result.extract.table(table).to_pylist()


def test_all_relevant_examples_are_present():
    kinds = {name.split("-")[1] for name in FILES}
    assert {"Patient", "Condition", "Observation", "Encounter", "Bundle"} <= kinds
    assert {"MedicationRequest", "MedicationStatement"} <= kinds
    assert len(FILES) >= 45


@pytest.mark.parametrize("name", FILES)
def test_every_example_reads(name: str, tmp_path: Path):
    result = read_one(name, tmp_path)
    assert result.format == "fhir-xml"
    reasons = [r.reason for r in result.extract.rejected if r.outcome == "rejected"]
    expected = EXPECTED_REJECTIONS.get(name)
    if expected is None:
        assert reasons == []
    else:
        assert len(reasons) == 1 and expected in reasons[0]
        assert all(r.original.startswith(b"<") for r in result.extract.rejected)
    kind = name.split("-")[1]
    tables = {n for n, t in result.extract.tables.items() if t.num_rows}
    want = {
        "Patient": {"patients"},
        "Condition": {"events"},
        "Observation": set() if expected else {"events"},
        "MedicationRequest": set() if expected else {"medications"},
        "MedicationStatement": {"medications"},
        "Encounter": {"episodes"},
        "Immunization": {"events"},
    }.get(kind)
    if want is not None:
        assert tables == want
    for event in rows(result, "events"):
        assert event["kind"] in ("condition", "observation", "procedure", "allergy", "immunisation")
        expected_system = "dmd" if event["kind"] == "immunisation" else "snomed"
        assert event["system"] == expected_system and event["code"]


PATIENTS = {
    "UKCore-Patient-RichardSmith-Example.xml": (RICHARD, "9912003888", "1970-09-11", "male",
                                                "LS17 7DF"),
    "UKCore-Patient-BabyPatient-Example.xml": ("UKCore-Patient-BabyPatient-Example",
                                               "9912003890", "2021-02-11", "female", "LS8 3DR"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_patient_values(name: str, tmp_path: Path):
    local_id, nhs, born, sex, postcode = PATIENTS[name]
    [patient] = rows(read_one(name, tmp_path), "patients")
    assert patient == {
        "local_id": local_id,
        "nhs_number": nhs,
        "birth_date": born,
        "postcode": postcode,
        "sex": sex,
        "death_date": None,
    }


def test_condition(tmp_path: Path):
    [event] = rows(read_one("UKCore-Condition-BleedingFromEar-Example.xml", tmp_path), "events")
    assert event == {
        "local_id": RICHARD,
        "kind": "condition",
        "system": "snomed",
        "code": "26322001",
        "date": None,
        "value": None,
        "unit": None,
        "comparator": None,
        "value_system": None,
        "value_code": None,
    }


def test_blood_pressure_components(tmp_path: Path):
    events = rows(read_one("UKCore-Observation-VitalSigns-BloodPressure-Example.xml", tmp_path),
                  "events")  # fmt: skip
    got = [(e["code"], e["value"], e["unit"], e["date"]) for e in events]
    assert got == [
        ("75367002", None, None, date(2023, 8, 10)),  # the panel (SNOMED preferred over LOINC)
        ("72313002", 142.0, "mm[Hg]", date(2023, 8, 10)),
        ("1091811000000102", 94.0, "mm[Hg]", date(2023, 8, 10)),
    ]


@pytest.mark.parametrize(
    ("name", "code", "value", "unit", "when"),
    [
        ("UKCore-Observation-VitalSigns-BodyWeight-Example.xml", "27113001", 90.0, "kg",
         date(2023, 8, 10)),
        ("UKCore-Observation-VitalSigns-BodyHeight-Example.xml", "50373000", 1.64, "m",
         date(2023, 8, 10)),
        ("UKCore-Observation-VitalSigns-BodyTemperature-Example.xml", "276885007", 36.5, "Cel",
         date(2023, 8, 10)),
        ("UKCore-Observation-Lab-Albumin-Example.xml", "1000821000000103", 47.0, "g/L",
         date(2022, 3, 8)),
        ("UKCore-Observation-HeavyDrinker-Example.xml", "1082631000000102", 20.0, "/d",
         date(2023, 8, 10)),
    ],
)  # fmt: skip
def test_observation_values(tmp_path: Path, name: str, code, value, unit, when):
    events = rows(read_one(name, tmp_path), "events")
    assert events[0]["code"] == code
    assert events[0]["value"] == pytest.approx(value)
    assert events[0]["unit"] == unit
    if when is not None:
        assert events[0]["date"] == when


def test_twenty_four_hour_blood_pressure(tmp_path: Path):
    events = rows(read_one("UKCore-Observation-24HourBloodPressure-Example.xml", tmp_path),
                  "events")  # fmt: skip
    assert [(e["code"], e["value"]) for e in events] == [
        ("314463006", None),
        ("314464000", 102.0),
        ("314465004", 84.0),
    ]
    assert {e["date"] for e in events} == {date(2023, 3, 10)}


@pytest.mark.parametrize(
    ("name", "code", "when"),
    [
        ("UKCore-MedicationRequest-Amoxicillin-Example.xml", "39732411000001106",
         date(2023, 6, 15)),
        ("UKCore-MedicationStatement-Amoxicillin-Example.xml", "39732311000001104",
         date(2021, 2, 15)),
    ],
)  # fmt: skip
def test_medications(tmp_path: Path, name: str, code: str, when: date):
    [med] = rows(read_one(name, tmp_path), "medications")
    assert med == {
        "local_id": RICHARD,
        "system": "dmd",
        "code": code,
        "date": when,
        "quantity": None,
        "quantity_unit": None,
    }


def test_inpatient_encounter(tmp_path: Path):
    [episode] = rows(read_one("UKCore-Encounter-InpatientEncounter-Example.xml", tmp_path),
                     "episodes")  # fmt: skip
    assert episode == {
        "local_id": RICHARD,
        "episode_id": "6f40cebe-7b55-461d-9d7f-eadb4c065762",
        "admission_date": date(2019, 12, 10),
        "discharge_date": date(2019, 12, 11),
        "admission_method": "13",
        "diagnoses": [],
        "procedures": [],
    }


def test_batch_post_bundle(tmp_path: Path):
    events = rows(read_one("UKCore-Bundle-BatchPOST-Example.xml", tmp_path), "events")
    assert len(events) == 15  # five blood pressures, each a panel and two components
    systolic = [e["value"] for e in events if e["code"] == "72313002"]
    diastolic = [e["value"] for e in events if e["code"] == "1091811000000102"]
    assert systolic == [120.0, 121.0, 125.0, 122.0, 118.0]
    assert diastolic == [95.0, 95.0, 90.0, 92.0, 94.0]


def test_news2_bundle(tmp_path: Path):
    result = read_one("UKCore-Bundle-NEWS2Observations-Example.xml", tmp_path)
    events = rows(result, "events")
    assert {e["local_id"] for e in events} == {"ad2c58ab-ffab-4366-9c76-b0322e22e881"}
    by_code = {e["code"]: e["value"] for e in events}
    assert by_code["86290005"] == 21.0  # respiratory rate
    assert by_code["276885007"] == 37.5  # temperature
    assert by_code["72313002"] == 120.0 and by_code["1091811000000102"] == 60.0
    assert {e["date"] for e in events} == {date(2018, 10, 4)}


def test_bundles_without_data_and_ignored_types(tmp_path: Path):
    allergy = read_one("UKCore-Bundle-AllergyList-Example.xml", tmp_path)
    assert allergy.ignored == {"List": 1}
    [event] = allergy.extract.table("events").to_pylist()
    assert (event["kind"], event["system"], event["code"]) == ("allergy", "snomed", "372687004")
    assert event["date"] == date(2019, 12, 10)
    [ignored] = [r for r in allergy.extract.rejected if r.outcome == "not used"]
    assert ignored.resource_type == "List" and ignored.original.startswith(b"<")
