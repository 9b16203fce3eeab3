"""Scanning stored files for identifiers taken from the source exports.

Parquet files are compressed, so a raw byte scan would miss a value that is there: each Parquet
file is decoded and every value scanned as text, besides the raw bytes of every file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def source_identifiers(area: Path) -> set[str]:
    """NHS numbers, dates of birth, postcodes and names from CSV exports under ``area``."""
    found: set[str] = set()
    for path in area.glob("*/patients.csv"):
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                for column in ("nhs_number", "birth_date", "postcode", "given_name", "family_name"):
                    value = (row.get(column) or "").strip()
                    if len(value) >= 5:
                        found.add(value)
                        if column == "postcode":
                            found.add(value.replace(" ", ""))
                        if column == "birth_date":
                            found.add(value.replace("-", ""))
    return found


def _parquet_values(path: Path) -> set[str]:
    """Every string value in a Parquet file (list columns flattened). Date columns are left
    out: a clinical event can fall on someone's birthday, and the check that no birth date is
    stored is structural (the hub's patients table has birth year and month only)."""
    table = pq.read_table(path)
    values: set[str] = set()
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = field.type
        if pa.types.is_list(kind):
            column = pc.list_flatten(column)
            kind = kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            values.update(v for v in column.to_pylist() if v is not None)
    return values


def leaks(folder: Path, identifiers: set[str]) -> list[str]:
    """Files under ``folder`` holding any of ``identifiers``: Parquet by value, others by bytes."""
    needles = [i.encode() for i in identifiers]
    problems = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            hit = bool(_parquet_values(path) & identifiers)
        else:
            data = path.read_bytes()
            hit = any(n in data for n in needles)
        if hit:
            problems.append(f"{path.relative_to(folder)} holds a source identifier")
    return problems
