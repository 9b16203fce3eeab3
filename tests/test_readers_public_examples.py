"""Real FHIR nobody on the project wrote (HL7 R4 specification examples, a Synthea bulk
export, prescription-service bundles) is read faithfully: statuses honoured, values and codes
intact, every resource accounted for. Sources and licences: tests/fixtures/README.md."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from confide.practice.minimise import minimise
from confide.practice.readers import read_source
from confide.practice.type1 import type1_states

FIXTURES = Path(__file__).parent / "fixtures"


def read(tmp_path: Path, folder: str, *names: str):
    export = tmp_path / "export"
    export.mkdir()
    for name in names or [p.name for p in (FIXTURES / folder).iterdir()]:
        shutil.copy(FIXTURES / folder / name, export / name)
    return read_source(export, source="B82001")


def outcomes(result) -> dict[str, tuple[str, str]]:
    return {r.file: (r.outcome, r.reason) for r in result.extract.rejected}


@pytest.mark.parametrize(
    ("name", "outcome", "words"),
    [
        ("condition-example-f205-infection.json", "not an event", "differential"),
        ("immunization-example-refused.json", "not an event", "not-done"),
        ("medicationstatementexample5.json", "dropped", "entered-in-error"),
        ("observation-example-f202-temperature.json", "dropped", "entered-in-error"),
        ("observation-example-bloodpressure-cancel.json", "not an event", "cancelled"),
        ("procedure-example-ambulation.json", "not an event", "not-done"),
        ("episodeofcare-example.json", "not an event", "not a GP registration"),
        ("condition-example2.json", "rejected", "no coded value"),
    ],
)
def test_hl7_examples_that_are_not_events_are_listed_not_stored(
    tmp_path: Path, name: str, outcome: str, words: str
) -> None:
    result = read(tmp_path, "hl7-r4", name)
    assert outcomes(result) == {name: (outcome, outcomes(result)[name][1])}
    assert words in outcomes(result)[name][1]
    assert all(t.num_rows == 0 for t in result.extract.tables.values())


def test_hl7_comparator_coded_answer_and_partial_onset(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        "hl7-r4",
        "observation-example-f205-egfr.json",
        "observation-example-secondsmoke.json",
        "allergyintolerance-example.json",
    )
    assert result.extract.rejected == []
    events = {e["code"]: e for e in result.extract.table("events").to_pylist()}
    egfr = events["48643-1"]  # "eGFR >60": a bound, not a measurement of 60
    assert (egfr["value"], egfr["comparator"]) == (60.0, ">")
    assert events["48642-3"]["comparator"] is None
    smoke = events["102409004"]
    assert (smoke["value_system"], smoke["value_code"]) == ("snomed", "373066001")
    allergy = events["227493005"]  # onset "2004": falls back to the recorded date
    assert (allergy["kind"], allergy["date"]) == ("allergy", date(2014, 10, 9))


def test_synthea_allergies_and_immunisations_are_read(tmp_path: Path) -> None:
    result = read(tmp_path, "synthea")
    accounts = result.extract.accounts
    assert accounts["AllergyIntolerance"] == {"kept": 6}
    assert accounts["Immunization"] == {"kept": 6}
    assert accounts["Device"] == {"not used": 1}
    kinds = {e["kind"] for e in result.extract.table("events").to_pylist()}
    assert {"allergy", "immunisation", "condition", "procedure"} <= kinds


def test_prescription_service_dmd_under_snomed_and_cancellations(tmp_path: Path) -> None:
    result = read(tmp_path, "eps")
    meds = result.extract.table("medications").to_pylist()
    assert meds and {m["system"] for m in meds} == {"dmd"}
    assert {m["code"] for m in meds} >= {"39113611000001102", "322237000"}
    [cancelled] = [r for r in result.extract.rejected if r.resource_type == "MedicationRequest"]
    assert cancelled.file == "acute-prescription-cancellation.json"
    assert cancelled.outcome == "not an event" and "cancelled" in cancelled.reason
    # The same patient in three bundles is one person, not a conflict.
    done = minimise(result.extract, type1_states(result.extract.table("events")))
    assert done.identities.num_rows == 1
    assert done.accounts["patients"] == {"merged: exact repeat": 2, "submitted": 1}
