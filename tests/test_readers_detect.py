"""Which source, kind and format an export folder holds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from confide.common.errors import InvalidInput
from confide.practice.readers import detect


def folder_with(tmp_path: Path, *names: str, source: dict | None = None) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"")
    if source is not None:
        (folder / "source.json").write_bytes(orjson.dumps(source))
    return folder


@pytest.mark.parametrize(
    ("names", "fmt"),
    [
        (("patients.csv", "events.csv"), "csv"),
        (("Patient.ndjson", "x.json"), "fhir-ndjson"),
        (("bundle.json",), "fhir-bundle"),
        (("a.XML",), "fhir-xml"),
    ],
)
def test_format_from_files(tmp_path: Path, names: tuple[str, ...], fmt: str):
    info = detect(folder_with(tmp_path, *names), source="B82001")
    assert (info.ods, info.kind, info.format) == ("B82001", "practice", fmt)


def test_source_json_and_overrides(tmp_path: Path):
    meta = {"ods": "RR8", "kind": "trust", "format": "fhir-xml", "name": "Leeds"}
    folder = folder_with(tmp_path, "patients.csv", source=meta)
    assert detect(folder) == detect(folder, source="RR8", kind="trust")
    assert detect(folder).format == "fhir-xml"
    overridden = detect(folder, source="B82001", kind="practice")
    assert (overridden.ods, overridden.kind) == ("B82001", "practice")


def test_trust_kind_inferred_from_episodes(tmp_path: Path):
    folder = folder_with(tmp_path, "patients.csv", "episodes.csv")
    assert detect(folder, source="RR8").kind == "trust"


@pytest.mark.parametrize(
    ("names", "source", "message"),
    [
        ((), {}, "no export found"),
        (("notes.txt",), None, "no export found"),
        (("patients.csv",), None, "which practice or trust"),
        (("patients.csv",), {"ods": "X", "format": "parquet"}, "unknown format"),
        (("patients.csv",), {"ods": "X", "kind": "hospital"}, "unknown source kind"),
        (("patients.csv",), {"ods": 5}, "ods must be text"),
    ],
)
def test_bad_folders(tmp_path: Path, names, source, message):
    folder = folder_with(tmp_path, *names, source=source)
    with pytest.raises(InvalidInput, match=message) as info:
        detect(folder)
    if message == "no export found":
        assert "patients.csv" in (info.value.hint or "")


def test_missing_folder_and_bad_source_json(tmp_path: Path):
    with pytest.raises(InvalidInput, match="does not exist"):
        detect(tmp_path / "nope")
    folder = folder_with(tmp_path, "patients.csv")
    (folder / "source.json").write_bytes(b"{oops")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        detect(folder)
