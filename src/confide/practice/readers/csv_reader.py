"""CSV exports (docs/formats.md) → canonical tables, at the scale of a large practice or trust.

DuckDB parses each file in parallel with every column as text (so nothing is coerced behind our
back), selects only the columns Confide keeps — free text, names, addresses and phone numbers
are never read — and checks types in SQL. A row that fails a check, or that DuckDB cannot parse
(wrong number of columns, a quote left open, bad UTF-8), becomes a ``Rejection`` with its line
number, a reason and its exact bytes: no row is lost silently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from confide.common.errors import InvalidInput
from confide.practice.model import EXTRACT_SCHEMAS, Rejection, conform
from confide.practice.readers.csv_lines import find_records

# DuckDB's structural error types, in words a practice manager can act on.
_STRUCTURAL = {
    "MISSING COLUMNS": "the row has fewer columns than the header (is it cut short?)",
    "TOO MANY COLUMNS": "the row has more columns than the header (an unquoted comma?)",
    "UNQUOTED VALUE": "a quoted value is not closed (a stray quote, or the file is cut short)",
    "INVALID ENCODING": "the row is not valid UTF-8 text",
    "LINE SIZE OVER MAXIMUM": "the row is too long to be a CSV record",
}


def _date(col: str) -> str:
    return (
        f"CASE WHEN regexp_full_match({col}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
        f"THEN TRY_CAST({col} AS DATE) END"
    )


def _number(col: str) -> str:
    return f"CASE WHEN isfinite(TRY_CAST({col} AS DOUBLE)) THEN TRY_CAST({col} AS DOUBLE) END"


def _codes(col: str) -> str:
    return (
        f"list_filter(list_transform(string_split(coalesce({col}, ''), ';'), "
        f"lambda x: trim(x)), lambda x: x <> '')"
    )


@dataclass(frozen=True)
class CsvSpec:
    """One CSV file: which source columns feed which canonical columns, and the checks."""

    file: str
    table: str
    select: dict[str, str]  # canonical column → SQL over source columns
    dates: tuple[str, ...] = ()  # source columns that must be ISO dates when present
    numbers: tuple[str, ...] = ()  # source columns that must be numbers when present
    extra: tuple[str, ...] = ()  # other source columns read

    @property
    def required(self) -> tuple[str, ...]:
        return ("patient_id", *self.extra, *self.dates, *self.numbers)


SPECS = (
    CsvSpec(
        "patients.csv",
        "patients",
        {
            "local_id": "patient_id",
            "nhs_number": "nhs_number",
            "birth_date": "birth_date",
            "postcode": "postcode",
            "sex": "sex",
            "death_date": _date("date_of_death"),
        },
        dates=("date_of_death",),
        extra=("nhs_number", "birth_date", "postcode", "sex"),
    ),
    CsvSpec(
        "registrations.csv",
        "registrations",
        {
            "local_id": "patient_id",
            "practice": "practice_ods",
            "start_date": _date("start_date"),
            "end_date": _date("end_date"),
        },
        dates=("start_date", "end_date"),
        extra=("practice_ods",),
    ),
    CsvSpec(
        "events.csv",
        "events",
        {
            "local_id": "patient_id",
            "kind": "kind",
            "system": "system",
            "code": "code",
            "date": _date("date"),
            "value": _number("value"),
            "unit": "unit",
        },
        dates=("date",),
        numbers=("value",),
        extra=("kind", "system", "code", "unit"),
    ),
    CsvSpec(
        "medications.csv",
        "medications",
        {
            "local_id": "patient_id",
            "system": "system",
            "code": "code",
            "date": _date("date"),
            "quantity": _number("quantity"),
            "quantity_unit": "quantity_unit",
        },
        dates=("date",),
        numbers=("quantity",),
        extra=("system", "code", "quantity_unit"),
    ),
    CsvSpec(
        "episodes.csv",
        "episodes",
        {
            "local_id": "patient_id",
            "episode_id": "episode_id",
            "admission_date": _date("admission_date"),
            "discharge_date": _date("discharge_date"),
            "admission_method": "admission_method",
            "diagnoses": _codes("diagnoses"),
            "procedures": _codes("procedures"),
        },
        dates=("admission_date", "discharge_date"),
        extra=("episode_id", "admission_method", "diagnoses", "procedures"),
    ),
)
CSV_FILES = tuple(spec.file for spec in SPECS)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_header(path: Path) -> list[str]:
    """The header row's column names; InvalidInput when there is none or a name repeats."""
    with path.open(encoding="utf-8-sig", newline="", errors="replace") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise InvalidInput(f"{path.resolve()} is empty: expected a header row and data rows")
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"{path.resolve()} has the column(s) {', '.join(dupes)} more than once")
    return names


def _sql(spec: CsvSpec, path: Path, header: list[str]) -> str:
    columns = "{" + ", ".join(f"{_quote_str(h)}: 'VARCHAR'" for h in header) + "}"
    checks = ["CASE WHEN patient_id IS NULL THEN 'patient_id is missing' END"]
    for col in spec.dates:
        checks.append(
            f"CASE WHEN {col} IS NOT NULL AND ({_date(col)}) IS NULL "
            f"THEN '{col} is not a date (YYYY-MM-DD)' END"
        )
    for col in spec.numbers:
        checks.append(
            f"CASE WHEN {col} IS NOT NULL AND ({_number(col)}) IS NULL "
            f"THEN '{col} is not a number' END"
        )
    select = ", ".join(f"{expr} AS {_quote_ident(name)}" for name, expr in spec.select.items())
    return (
        f"SELECT {select}, NULLIF(concat_ws('; ', {', '.join(checks)}), '') AS _reason "
        f"FROM read_csv({_quote_str(str(path))}, columns = {columns}, header = true, "
        "auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        "store_rejects = true, rejects_table = 'rej', rejects_scan = 'rej_scan', "
        "rejects_limit = 0)"
    )


def read_csv_table(
    spec: CsvSpec, path: Path, con: duckdb.DuckDBPyConnection
) -> tuple[pa.Table, list[Rejection]]:
    """One CSV file → (canonical table, rejections)."""
    header = read_header(path)
    missing = [c for c in spec.required if c not in header]
    if missing:
        raise InvalidInput(
            f"{path.resolve()} is missing the column(s) {', '.join(missing)}",
            hint="see the CSV section of docs/formats.md for the expected header",
        )
    con.execute("DROP TABLE IF EXISTS rej")
    con.execute("DROP TABLE IF EXISTS rej_scan")
    try:
        table = con.sql(_sql(spec, path, header)).to_arrow_table()
        structural = con.execute(
            "SELECT line, string_agg(DISTINCT error_type, '|' ORDER BY error_type) FROM rej "
            "GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(
            f"{path.resolve()} could not be read as CSV: {type(exc).__name__}"
        ) from None
    reasons = table.column("_reason")
    bad = np.flatnonzero(pc.is_valid(reasons).to_numpy(zero_copy_only=False))
    good = table.drop_columns(["_reason"])
    if bad.size:
        good = good.filter(pc.is_null(reasons))
    good = conform(good, EXTRACT_SCHEMAS[spec.table])

    structural_reasons = {int(line): err for line, err in structural}
    by_number, by_ordinal = find_records(path, set(structural_reasons), set(bad.tolist()))
    rejected = []
    for number, err in structural_reasons.items():
        rec = by_number.get(number)
        rejected.append(
            Rejection(
                file=path.name,
                location=f"line {rec.line}" if rec else f"record {number}",
                reason="; ".join(
                    _STRUCTURAL.get(e, f"the row could not be read ({e.lower()})")
                    for e in err.split("|")
                ),
                original=rec.original if rec else b"",
            )
        )
    reason_list = reasons.take(pa.array(bad)).to_pylist() if bad.size else []
    for ordinal, reason in zip(bad.tolist(), reason_list, strict=True):
        rec = by_ordinal.get(ordinal)
        rejected.append(
            Rejection(
                file=path.name,
                location=f"line {rec.line}" if rec else f"data row {ordinal + 1}",
                reason=reason,
                original=rec.original if rec else b"",
            )
        )
    rejected.sort(
        key=lambda rejection: (
            rejection.location.startswith("line") is False,
            _line_no(rejection.location),
        )
    )
    return good, rejected


def _line_no(location: str) -> int:
    digits = location.rsplit(" ", 1)[-1]
    return int(digits) if digits.isdigit() else 0


def read_csv_export(folder: Path) -> tuple[dict[str, pa.Table], list[Rejection]]:
    """Every known CSV file in ``folder`` (``patients.csv`` is required)."""
    if not (folder / "patients.csv").is_file():
        raise InvalidInput(
            "the CSV export has no patients.csv",
            hint=f"a CSV export holds {', '.join(CSV_FILES)} (see docs/formats.md)",
        )
    con = duckdb.connect()
    try:
        tables: dict[str, pa.Table] = {}
        rejected: list[Rejection] = []
        for spec in SPECS:
            path = folder / spec.file
            if path.is_file():
                tables[spec.table], rows = read_csv_table(spec, path, con)
                rejected.extend(rows)
        return tables, rejected
    finally:
        con.close()
