"""Clean a list of NHS numbers in the national "Check for National Data Opt-outs" format.

The format is one NHS number per line, each followed by a comma (``9434765919,``). The output
is the same format, holding only the people who may be included for the stated use. Invalid
NHS numbers and malformed lines go to standard error with their line numbers (never echoed) and
are never returned as clean.

Everything is vectorised with numpy over the file's bytes (memory-mapped): line boundaries,
the modulus 11 check and set membership against the sorted opted-out numbers, a million lines
at a time, so ten million numbers take seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np

from confide.choices import policy
from confide.choices.registry import ChoicesRegistry
from confide.common import nhs_number as nhs
from confide.common.errors import InvalidInput

_NL, _CR, _COMMA, _ZERO = 10, 13, 44, 48
_BLOCK = 1_000_000
MALFORMED = "not in the check format (expected 10 digits followed by a comma)"


@dataclass
class CheckSummary:
    """What a check did (counts only: no numbers)."""

    lines: int = 0
    numbers: int = 0
    included: int = 0
    excluded: int = 0
    invalid: int = 0
    malformed: int = 0
    blank: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def opted_out_for(
    registry: ChoicesRegistry,
    purpose: str,
    recipient_kind: str,
    legal_basis: str = "public_task",
    output_form: str = "record_level",
    preset: str = "strict",
) -> tuple[np.ndarray, policy.Terms]:
    """Sorted int64 NHS numbers the policy excludes from this use, loaded in one query."""
    terms = policy.terms(purpose, recipient_kind, legal_basis, output_form, preset)
    if terms.refused:
        raise InvalidInput(
            f"This use is refused for everyone ({terms.refused}), so no list can be cleaned "
            "for it.",
            hint="Only research, planning, commissioning and public health uses are permitted.",
        )
    return registry.holders(terms.excluding), terms


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without CR/LF) of every line."""
    ends = np.flatnonzero(buf == _NL)
    if len(buf) and buf[-1] != _NL:
        ends = np.append(ends, len(buf))
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == _CR)
    return starts, ends - has_cr


def _scan(
    buf: np.ndarray, summary: CheckSummary, bad: list[tuple[int, str]]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (line numbers, k×10 digit matrix) for lines shaped ``dddddddddd,``."""
    size = len(buf)
    if size and size % 12 == 0 and buf[-1] == _NL:
        # Fast path: every line is exactly "NNNNNNNNNN,\n" (the usual case) - a reshape.
        grid = buf.reshape(-1, 12)
        if (grid[:, 10] == _COMMA).all() and (grid[:, 11] == _NL).all():
            summary.lines = len(grid)
            for start in range(0, len(grid), _BLOCK):
                part = grid[start : start + _BLOCK, :10]
                yield np.arange(start + 1, start + len(part) + 1), part
            return
    starts, ends = _line_bounds(buf)
    summary.lines = len(starts)
    length = ends - starts
    blank = length == 0
    shaped = (length == 11) & (buf[np.maximum(ends - 1, 0)] == _COMMA)
    summary.blank = int(blank.sum())
    for line in np.flatnonzero(~blank & ~shaped):
        bad.append((int(line) + 1, MALFORMED))
    summary.malformed = len(bad)
    lines = np.flatnonzero(shaped)
    offsets = np.arange(10)
    for start in range(0, len(lines), _BLOCK):
        part = lines[start : start + _BLOCK]
        yield part + 1, buf[starts[part][:, None] + offsets]


def _digits_to_int(grid: np.ndarray) -> np.ndarray:
    """Ten ASCII digit columns → int64 values (column by column: faster than a matmul)."""
    value = grid[:, 0].astype(np.int64) - _ZERO
    for column in range(1, 10):
        value *= 10
        value += grid[:, column]
        value -= _ZERO
    return value


def clean(
    buf: np.ndarray, opted_out: np.ndarray, out: BinaryIO
) -> tuple[CheckSummary, list[tuple[int, str]]]:
    """Write the lines of ``buf`` that may be included to ``out``; return counts and problems.

    ``opted_out`` is a sorted int64 array. Problems are (line number, reason) pairs.
    """
    summary = CheckSummary()
    bad: list[tuple[int, str]] = []
    for line_numbers, grid in _scan(buf, summary, bad):
        grid = np.ascontiguousarray(grid)
        valid = nhs.valid_mask(grid.view("S10").ravel())
        summary.numbers += len(grid)
        if not valid.all():
            for i in np.flatnonzero(~valid):
                text = grid[i].tobytes().decode("latin-1")
                bad.append((int(line_numbers[i]), nhs.why_invalid(text) or "invalid"))
            summary.invalid += int((~valid).sum())
        grid = grid[valid]
        keep = np.ones(len(grid), dtype=bool)
        if len(opted_out) and len(grid):
            values = _digits_to_int(grid)
            pos = np.minimum(np.searchsorted(opted_out, values), len(opted_out) - 1)
            keep = opted_out[pos] != values
        summary.excluded += int((~keep).sum())
        kept = grid[keep]
        summary.included += len(kept)
        lines = np.empty((len(kept), 12), dtype=np.uint8)
        lines[:, :10] = kept
        lines[:, 10] = _COMMA
        lines[:, 11] = _NL
        out.write(lines.tobytes())
    bad.sort()
    return summary, bad


def read_buffer(path: Path) -> np.ndarray:
    """The file's bytes as a read-only uint8 array (memory-mapped when non-empty)."""
    try:
        size = path.stat().st_size
    except OSError:
        raise InvalidInput("The check file cannot be read.", hint="Check the file path.") from None
    if size == 0:
        return np.empty(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def check_file(
    path: Path, opted_out: np.ndarray, out: BinaryIO, err: TextIO | None
) -> CheckSummary:
    """Clean ``path`` to ``out``; write one line per problem to ``err``."""
    started = time.perf_counter()
    summary, bad = clean(read_buffer(path), opted_out, out)
    if err is not None and bad:
        err.write("".join(f"line {n}: {reason}\n" for n, reason in bad))
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
