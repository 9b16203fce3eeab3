"""CSV exports: one folder per source with ``source.json`` and the tables of docs/formats.md."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from confide.synth.tables import COLUMNS

_OPTIONS = pacsv.WriteOptions(include_header=True, quoting_style="needed")


def write_csv_source(folder: Path, tables: dict[str, pa.Table]) -> None:
    """Write each table as ``<name>.csv`` with its documented columns, in order."""
    for name, table in tables.items():
        ordered = table.select(list(COLUMNS[name]))
        pacsv.write_csv(ordered, str(folder / f"{name}.csv"), _OPTIONS)
