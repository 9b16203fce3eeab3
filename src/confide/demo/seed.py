"""Seeding the demo's other parties from the synthetic area, so every page has something real.

- The choices registry's identity facts (standing in for the national demographics service):
  each practice patient's NHS number, date of birth, postcode, practice and district, read
  with the practice agent's own readers from the area's exports.
- The access party's demo organisations, people and approved projects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from confide.access.seed import seed_demo
from confide.common import postcode as postcodes
from confide.demo import credentials
from confide.demo.pipeline import source_folders
from confide.embedded import Installation
from confide.practice.readers import read_export

PATIENT_FILES = ("patients.csv", "Patient.ndjson", "source.json")


def _patients_only(folder: Path) -> Any:
    """Read just the Patient records of an export (links the patient file into a temp folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in PATIENT_FILES:
            if (folder / name).exists():
                os.symlink(folder / name, Path(tmp) / name)
        if not any((Path(tmp) / n).exists() for n in PATIENT_FILES[:2]):
            return None
        return read_export(Path(tmp)).table("patients")


def enrol_demographics(parties: Installation, area: Path) -> int:
    """Enrol every practice patient's identity facts for the online identity check."""
    records = []
    for folder, meta in source_folders(area):
        if meta.get("kind") != "practice":
            continue
        patients = _patients_only(folder)
        if patients is None:
            continue
        for row in patients.select(["nhs_number", "birth_date", "postcode"]).to_pylist():
            if row["nhs_number"] and row["birth_date"]:
                records.append(
                    (
                        row["nhs_number"],
                        row["birth_date"],
                        row["postcode"],
                        meta["ods"],
                        postcodes.district(row["postcode"]),
                    )
                )
    return parties.choices.enrol_demographics(records) if records else 0


def seed(parties: Installation, area: Path) -> dict[str, Any]:
    """Enrol demographics and the demo projects; returns what the demo prints."""
    enrolled = enrol_demographics(parties, area)
    projects = seed_demo(parties.access)
    credentials.save(parties.home, projects)
    return {"demographics": enrolled, "access": projects}
