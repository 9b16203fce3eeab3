"""What an export folder holds: the source's ODS code, its kind and the file format.

``source.json`` says so when present; otherwise the files do (``patients.csv`` → CSV,
``*.ndjson`` → FHIR NDJSON, ``*.json`` → FHIR Bundles, ``*.xml`` → FHIR XML). Arguments given by
the person running the agent win over both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from confide.common.errors import InvalidInput

FORMATS = ("csv", "fhir-ndjson", "fhir-bundle", "fhir-xml")
KINDS = ("practice", "trust")
SOURCE_FILE = "source.json"
_EXPECTED = (
    "expected source.json, or patients.csv (CSV), *.ndjson (FHIR NDJSON), "
    "*.json (FHIR Bundles) or *.xml (FHIR XML)"
)


@dataclass(frozen=True)
class SourceInfo:
    ods: str
    kind: str
    format: str


def _source_json(folder: Path) -> dict[str, object]:
    path = folder / SOURCE_FILE
    if not path.is_file():
        return {}
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise InvalidInput(f"{SOURCE_FILE} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{SOURCE_FILE} must be a JSON object with ods, kind and format")
    return doc


def _by_files(folder: Path) -> str | None:
    if (folder / "patients.csv").is_file():
        return "csv"
    names = [p.name for p in folder.iterdir() if p.is_file() and p.name != SOURCE_FILE]
    for suffix, fmt in ((".ndjson", "fhir-ndjson"), (".json", "fhir-bundle"), (".xml", "fhir-xml")):
        if any(n.lower().endswith(suffix) for n in names):
            return fmt
    return None


def _text(doc: dict[str, object], key: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{SOURCE_FILE}: {key} must be text")
    return value


def detect(folder: Path, source: str | None = None, kind: str | None = None) -> SourceInfo:
    """The export's ODS code, kind and format; InvalidInput saying what was expected."""
    where = folder.resolve()
    if folder.is_file():
        raise InvalidInput(
            f"{where} is a file; an export is a folder of files",
            hint="Give the folder that holds the export: " + _EXPECTED,
        )
    if not folder.is_dir():
        raise InvalidInput(f"the export folder {where} does not exist", hint=_EXPECTED)
    doc = _source_json(folder)
    fmt = _text(doc, "format") or _by_files(folder)
    if fmt is None:
        raise InvalidInput(f"no export found in the folder {where}", hint=_EXPECTED)
    if fmt not in FORMATS:
        raise InvalidInput(
            f"{SOURCE_FILE}: unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}"
        )
    ods = source or _text(doc, "ods")
    if not ods:
        raise InvalidInput(
            "the export does not say which practice or trust it comes from",
            hint=f"add {SOURCE_FILE} with its ODS code, or pass --source",
        )
    chosen_kind = kind or _text(doc, "kind") or _default_kind(folder, fmt)
    if chosen_kind not in KINDS:
        raise InvalidInput(f"unknown source kind {chosen_kind!r}", hint="use practice or trust")
    return SourceInfo(ods=ods, kind=chosen_kind, format=fmt)


def _default_kind(folder: Path, fmt: str) -> str:
    """A CSV export with hospital episodes is a trust's; anything else a practice's."""
    if fmt == "csv" and (folder / "episodes.csv").is_file():
        return "trust"
    return "practice"


def data_files(folder: Path, fmt: str) -> list[Path]:
    """The files a FHIR reader reads, in a stable order."""
    suffix = {"fhir-ndjson": ".ndjson", "fhir-bundle": ".json", "fhir-xml": ".xml"}[fmt]
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.lower().endswith(suffix) and p.name != SOURCE_FILE
    )
