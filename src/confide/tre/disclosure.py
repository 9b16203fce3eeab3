"""Output checking: primary suppression, rounding and secondary suppression of every cell.

The rules are data (``DisclosureRules`` rows in ``PRESETS``). Every visible cell is judged by
the contributor count the service computed for it (see ``rewrite``), never by the
researcher's own numbers. Count cells are also judged by their value (small counts are
redacted, the rest rounded). Secondary suppression then hides a further cell wherever a
single suppressed cell could be recovered by subtraction from a margin. Every change is
labelled with the reason.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pyarrow as pa

from confide.common.errors import InvalidInput
from confide.tre.rewrite import CountingPlan, OutputColumn

REDACTED = None  # a redacted cell is released as NULL and labelled


class OutputStatus(StrEnum):
    RELEASED = "released"
    HELD_FOR_REVIEW = "held_for_review"
    REFUSED = "refused"


@dataclass(frozen=True)
class DisclosureRules:
    """One statistical disclosure control rule set.

    ``redact_counts_up_to``: count cells with value in [1, this] are redacted (and 0 too when
    ``redact_zero``); ``min_contributors``: any cell fed by fewer distinct patients is redacted;
    ``rounding_base``: counts that survive are rounded to the nearest multiple (None: exact)."""

    name: str
    redact_counts_up_to: int
    redact_zero: bool
    min_contributors: int
    rounding_base: int | None
    summary: str


PRESETS: dict[str, DisclosureRules] = {
    rules.name: rules
    for rules in (
        DisclosureRules(
            "opensafely", 7, True, 8, 5, "redact counts of 7 or fewer; round others to nearest 5"
        ),
        DisclosureRules(
            "nhs_statistics", 7, False, 8, 5, "suppress counts 1-7; round others to nearest 5"
        ),
        DisclosureRules(
            "ons", 9, False, 10, None, "suppress counts below 10; no rounding; 10 contributors"
        ),
    )
}
DEFAULT_PRESET = "opensafely"


def rules_for(preset: str) -> DisclosureRules:
    try:
        return PRESETS[preset]
    except KeyError:
        raise InvalidInput(
            f"unknown disclosure preset {preset!r}; choose one of {', '.join(PRESETS)}"
        ) from None


@dataclass(frozen=True)
class CellLabel:
    row: int
    column: str
    action: Literal["redacted", "rounded", "secondary"]
    reason: str


@dataclass
class CheckedOutput:
    """A checked output: only ``status == released`` may leave the service."""

    status: OutputStatus
    columns: list[str]
    rows: list[dict[str, Any]]
    labels: list[CellLabel] = field(default_factory=list)
    contributors_hidden: bool = True
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "columns": self.columns,
            "rows": self.rows,
            "labels": [vars(label) for label in self.labels],
            "contributors_hidden": self.contributors_hidden,
            "reasons": self.reasons,
        }


def round_to(value: int, base: int) -> int:
    """Nearest multiple of ``base``, halves away from zero (integers never sit on a half for
    base 5, so this is 5 * round(x / 5) without banker's rounding surprises)."""
    sign = -1 if value < 0 else 1
    return sign * ((abs(value) + base // 2) // base) * base


def refused(reason: str) -> CheckedOutput:
    return CheckedOutput(OutputStatus.REFUSED, [], [], reasons=[reason])


def check_output(
    table: pa.Table, plan: CountingPlan, rules: DisclosureRules | None = None
) -> CheckedOutput:
    """Apply ``rules`` to every visible cell of ``table`` (which carries ``plan.hidden``)."""
    rules = rules or PRESETS[DEFAULT_PRESET]
    data = table.to_pylist()
    visible = [c.name for c in plan.columns]
    rows = [{name: row[name] for name in visible} for row in data]
    if plan.held_reason:
        return CheckedOutput(
            OutputStatus.HELD_FOR_REVIEW, visible, rows, reasons=[plan.held_reason]
        )
    checker = _Checker(rules, plan.columns, data, rows)
    checker.primary()
    checker.secondary()
    checker.round_counts()
    return CheckedOutput(OutputStatus.RELEASED, visible, rows, labels=checker.labels)


class _Checker:
    def __init__(
        self,
        rules: DisclosureRules,
        columns: tuple[OutputColumn, ...],
        data: list[dict[str, Any]],
        rows: list[dict[str, Any]],
    ) -> None:
        self.rules = rules
        self.columns = columns
        self.data = data
        self.rows = rows
        self.labels: list[CellLabel] = []
        self.suppressed: set[tuple[int, str]] = set()
        self.counts = [c.name for c in columns if c.kind == "count"]
        self.keys = [c.name for c in columns if c.kind == "key"]

    def _redact(self, row: int, column: str, action: str, reason: str) -> None:
        self.rows[row][column] = REDACTED
        self.suppressed.add((row, column))
        self.labels.append(CellLabel(row, column, action, reason))  # type: ignore[arg-type]

    def primary(self) -> None:
        rules = self.rules
        has_aggregate = any(c.kind != "key" for c in self.columns)
        for index, raw in enumerate(self.data):
            for column in self.columns:
                contributors = int(raw[column.contributors] or 0)
                value = raw[column.name]
                if column.kind == "key" and has_aggregate:
                    continue
                if contributors < rules.min_contributors:
                    self._redact(
                        index,
                        column.name,
                        "redacted",
                        f"fewer than {rules.min_contributors} patients contributed",
                    )
                elif column.kind == "count" and value is not None and _is_small(value, rules):
                    self._redact(
                        index,
                        column.name,
                        "redacted",
                        f"count of {rules.redact_counts_up_to} or fewer",
                    )

    def _lines(self) -> list[list[tuple[int, str]]]:
        """Groups of count cells whose sum is a margin someone can learn (by another query or
        from the same output): each row across its count columns, and for each key column the
        rows that agree on every other key (a one-way table's column is one line)."""
        lines: list[list[tuple[int, str]]] = []
        if len(self.counts) > 1:
            lines.extend([(i, c) for c in self.counts] for i in range(len(self.rows)))
        for key in self.keys or [None]:
            others = [k for k in self.keys if k != key]
            buckets: dict[tuple[Any, ...], list[int]] = defaultdict(list)
            for i, raw in enumerate(self.data):
                buckets[tuple(repr(raw[k]) for k in others)].append(i)
            for members in buckets.values():
                for column in self.counts:
                    lines.append([(i, column) for i in members])
        return [line for line in lines if len(line) > 1]

    def secondary(self) -> None:
        lines = self._lines()
        changed = True
        while changed:
            changed = False
            for line in lines:
                hidden = [cell for cell in line if cell in self.suppressed]
                shown = [cell for cell in line if cell not in self.suppressed]
                if len(hidden) != 1 or not shown:
                    continue
                row, column = min(shown, key=lambda cell: _sort_value(self.data, cell))
                self._redact(
                    row,
                    column,
                    "secondary",
                    f"protects the suppressed cell in row {hidden[0][0]}, column "
                    f"{hidden[0][1]!r} from recovery by subtraction",
                )
                changed = True

    def round_counts(self) -> None:
        base = self.rules.rounding_base
        if not base:
            return
        for index, row in enumerate(self.rows):
            for column in self.counts:
                value = row[column]
                if (index, column) in self.suppressed or value is None:
                    continue
                rounded = round_to(round(value), base)
                if rounded != value:
                    row[column] = rounded
                    self.labels.append(
                        CellLabel(index, column, "rounded", f"rounded to the nearest {base}")
                    )


def _is_small(value: Any, rules: DisclosureRules) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    if value == 0:
        return rules.redact_zero
    return abs(value) <= rules.redact_counts_up_to


def _sort_value(data: list[dict[str, Any]], cell: tuple[int, str]) -> float:
    value = data[cell[0]][cell[1]]
    return float(value) if value is not None else math.inf
