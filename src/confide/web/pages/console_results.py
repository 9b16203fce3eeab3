"""A checked output as people read it: a table whose changed cells say so, and downloads.

The labels come from the TRE's output checking (``{row, column, action, reason}``; in DP mode
``{column, action: noise, reason}`` with a 95% interval beside each number). Nothing is
recomputed here: the page shows what the service released, and says why each cell changed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

ACTIONS = {
    "suppressed": ("suppressed", "Suppressed"),
    "redacted": ("redacted", "Redacted"),
    "secondary": ("hidden", "Hidden so a suppressed cell cannot be worked out"),
    "rounded": ("rounded", "Rounded"),
    "noise": ("noise added", "Statistical noise added"),
}
_ROW = re.compile(r"\brow (\d+)\b")
COLOURS = {"suppressed": "orange", "redacted": "orange", "hidden": "orange", "rounded": "grey"}


@dataclass
class Cell:
    text: str
    mark: str | None = None  # a short word shown in the cell ("redacted", "rounded")
    colour: str = "grey"
    interval: str | None = None  # DP: the 95% interval


@dataclass
class ResultTable:
    columns: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)  # one line per label
    summary: str = ""
    reasons: list[str] = field(default_factory=list)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _summary(labels: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for item in labels:
        counts[item.get("action", "")] = counts.get(item.get("action", ""), 0) + 1
    parts = [
        f"{n} {'cell' if n == 1 else 'cells'} {ACTIONS.get(a, (a, a))[0]}"
        for a, n in counts.items()
        if a != "noise"
    ]
    if parts:
        return ", ".join(parts) + "."
    if any(a == "noise" for a in counts):
        return "Every number has statistical noise added; no cell was suppressed."
    return "No cell was suppressed."


def result_table(result: dict[str, Any]) -> ResultTable:
    """The released output with every changed cell marked and every change explained."""
    columns = [str(c) for c in result.get("columns", [])]
    labels = list(result.get("labels") or [])
    marks = {
        (item["row"], item["column"]): ACTIONS.get(item["action"], (item["action"], ""))[0]
        for item in labels
        if "row" in item
    }
    noisy = {item["column"] for item in labels if item.get("action") == "noise"}
    intervals = result.get("intervals") or []
    rows = []
    for index, row in enumerate(result.get("rows", [])):
        cells = []
        for column in columns:
            value = row.get(column)
            mark = marks.get((index, column))
            cell = Cell(fmt(value), mark, COLOURS.get(mark or "", "grey"))
            if column in noisy and index < len(intervals) and column in intervals[index]:
                low, high = intervals[index][column]
                cell.interval = f"{fmt(low)} to {fmt(high)}"
            cells.append(cell)
        rows.append(cells)
    notes = _grouped_notes(labels)
    reasons = [str(r) for r in (result.get("notes") or result.get("reasons") or [])]
    return ResultTable(columns, rows, notes, _summary(labels), reasons)


def _grouped_notes(labels: list[dict[str, Any]]) -> list[str]:
    """One line per distinct change: identical reasons list their rows once."""
    grouped: dict[tuple[str, str, str], list[int]] = {}
    for item in labels:
        reason = _ROW.sub(lambda m: f"row {int(m[1]) + 1}", str(item.get("reason", "")))
        key = (str(item.get("column", "")), str(item.get("action", "")), reason)
        grouped.setdefault(key, [])
        if "row" in item:
            grouped[key].append(int(item["row"]) + 1)
    lines = []
    for (column, action, reason), rows in grouped.items():
        word = ACTIONS.get(action, (action, ""))[0]
        where = ""
        if rows:
            shown = ", ".join(str(r) for r in rows[:12]) + (" ..." if len(rows) > 12 else "")
            where = f"{'Row' if len(rows) == 1 else 'Rows'} {shown}, "
        lines.append(f"{where}{column}: {word} ({reason}).")
    return lines


def _csv_value(value: Any) -> Any:
    """Numbers exact; text that a spreadsheet would run as a formula made inert."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def as_csv(result: dict[str, Any]) -> str:
    """The released cells as CSV (redacted cells empty; the JSON carries the labels)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = list(result.get("columns", []))
    writer.writerow([_csv_value(c) for c in columns])
    for row in result.get("rows", []):
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return out.getvalue()


def as_json(outcome: dict[str, Any]) -> str:
    """The released output with its labels and where it came from."""
    keep = ("id", "project", "mode", "status", "release_id", "result")
    return json.dumps({k: outcome.get(k) for k in keep}, indent=2, default=str)
