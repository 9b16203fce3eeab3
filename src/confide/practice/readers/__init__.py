"""Export readers: a source's export folder (CSV, FHIR NDJSON, Bundles or XML) → ``Extract``.

``read_export`` is what the agent calls; ``read_source`` also says which format was read and
which FHIR resource types were skipped because Confide does not use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from confide.practice.model import Extract
from confide.practice.readers.csv_reader import SPECS, read_csv_export
from confide.practice.readers.detect import SourceInfo, data_files, detect
from confide.practice.readers.fhir_json import read_json_file, read_ndjson_file
from confide.practice.readers.fhir_resources import FhirCollector
from confide.practice.readers.fhir_xml import read_xml_file

__all__ = ["ReadResult", "SourceInfo", "detect", "read_export", "read_source"]

_FHIR_READERS = {
    "fhir-ndjson": read_ndjson_file,
    "fhir-bundle": read_json_file,
    "fhir-xml": read_xml_file,
}


@dataclass
class ReadResult:
    extract: Extract
    format: str
    ignored: dict[str, int] = field(default_factory=dict)


def read_source(folder: Path, source: str | None = None, kind: str | None = None) -> ReadResult:
    """Read one export folder; ``source`` (ODS code) and ``kind`` override ``source.json``."""
    folder = Path(folder)
    info = detect(folder, source=source, kind=kind)
    extract = Extract(source=info.ods, kind=info.kind)
    if info.format == "csv":
        extract.tables, extract.rejected = read_csv_export(folder)
        extract.accounts = _csv_accounts(extract)
        return ReadResult(extract, info.format)
    collector = FhirCollector()
    read_file = _FHIR_READERS[info.format]
    for path in data_files(folder, info.format):
        read_file(path, collector)
    collected = collector.finish()
    extract.tables, extract.rejected = collected.tables, collected.rejected
    extract.accounts = collected.accounts
    return ReadResult(extract, info.format, collected.ignored)


def _csv_accounts(extract: Extract) -> dict[str, dict[str, int]]:
    """Rows kept and rejected per CSV file (every data line is one or the other)."""
    accounts: dict[str, dict[str, int]] = {}
    for spec in SPECS:
        kept = extract.tables[spec.table].num_rows if spec.table in extract.tables else 0
        rejected = sum(1 for r in extract.rejected if r.file == spec.file)
        if kept or rejected:
            accounts[spec.file] = {
                **({"kept": kept} if kept else {}),
                **({"rejected": rejected} if rejected else {}),
            }
    return accounts


def read_export(folder: Path, source: str | None = None, kind: str | None = None) -> Extract:
    """Read one export folder into the canonical ``Extract`` (see docs/formats.md)."""
    return read_source(folder, source=source, kind=kind).extract
