"""Clean a list of NHS numbers in the national "Check for National Data Opt-outs" format.

The format is one NHS number per line, each followed by a comma (``9434765919,``); spaces or
tabs around the number or the comma are tolerated. The output is the same format, with the
input's line endings (CRLF stays CRLF), holding only the people who may be included for the
stated use. Invalid NHS numbers and malformed lines go to standard error with their line numbers
(never echoed) and are never returned as clean; with ``all_or_nothing`` (as the national
service does) one invalid line means no list at all.

Everything is vectorised with numpy over the file's bytes (memory-mapped): line boundaries,
the modulus 11 check and set membership against the sorted opted-out numbers, a million lines
at a time, so ten million numbers take seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from confide.choices import policy
from confide.choices.registry import ChoicesRegistry
from confide.common import exit_codes
from confide.common import nhs_number as nhs
from confide.common.errors import ConfideError, FileProblem, InvalidInput, reading_file

_NL, _CR, _COMMA, _ZERO = 10, 13, 44, 48
_SPACED = re.compile(rb"[ \t]*([0-9]{10})[ \t]*,[ \t]*")
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

    @property
    def problems(self) -> int:
        """Lines that were not valid check lines (blank lines are not problems)."""
        return self.invalid + self.malformed


class InvalidLines(ConfideError):
    """Some lines of a list were invalid: each is reported with its line number."""

    exit_code = exit_codes.INVALID_LINES


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
    for width, ending in ((12, (_NL,)), (13, (_CR, _NL))):
        if not (size and size % width == 0 and buf[-1] == _NL):
            continue
        # Fast path: every line is exactly "NNNNNNNNNN,\n" (or CRLF, the usual case): a reshape.
        grid = buf.reshape(-1, width)
        if (grid[:, 10] == _COMMA).all() and all(
            (grid[:, 11 + i] == byte).all() for i, byte in enumerate(ending)
        ):
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
    digits_at = starts.copy()
    for line in np.flatnonzero(~blank & ~shaped):
        # Rare: tolerate spaces or tabs around the number and the comma; else malformed.
        text = buf[starts[line] : ends[line]].tobytes()
        found = _SPACED.fullmatch(text)
        if found is None:
            if not text.strip(b" \t"):
                blank[line] = True
                continue
            bad.append((int(line) + 1, MALFORMED))
            continue
        shaped[line] = True
        digits_at[line] = starts[line] + found.start(1)
    summary.blank = int(blank.sum())
    summary.malformed = len(bad)
    lines = np.flatnonzero(shaped)
    offsets = np.arange(10)
    for start in range(0, len(lines), _BLOCK):
        part = lines[start : start + _BLOCK]
        yield part + 1, buf[digits_at[part][:, None] + offsets]


def _digits_to_int(grid: np.ndarray) -> np.ndarray:
    """Ten ASCII digit columns → int64 values (column by column: faster than a matmul)."""
    value = grid[:, 0].astype(np.int64) - _ZERO
    for column in range(1, 10):
        value *= 10
        value += grid[:, column]
        value -= _ZERO
    return value


def line_ending(buf: np.ndarray) -> bytes:
    """The file's line ending, from its first line (CRLF or LF)."""
    first = np.flatnonzero(buf[: 1 << 16] == _NL)
    return b"\r\n" if len(first) and first[0] > 0 and buf[first[0] - 1] == _CR else b"\n"


def clean(
    buf: np.ndarray, opted_out: np.ndarray, out: BinaryIO
) -> tuple[CheckSummary, list[tuple[int, str]]]:
    """Write the lines of ``buf`` that may be included to ``out``; return counts and problems.

    ``opted_out`` is a sorted int64 array. Problems are (line number, reason) pairs. Lines are
    written with the input's line ending.
    """
    ending = np.frombuffer(line_ending(buf), dtype=np.uint8)
    width = 11 + len(ending)
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
        lines = np.empty((len(kept), width), dtype=np.uint8)
        lines[:, :10] = kept
        lines[:, 10] = _COMMA
        lines[:, 11:] = ending
        out.write(lines.tobytes())
    bad.sort()
    return summary, bad


def read_buffer(path: Path) -> np.ndarray:
    """The file's bytes as a read-only uint8 array (memory-mapped when non-empty)."""
    with reading_file(path, "is a folder; the check list is a file."):
        size = path.stat().st_size
        with path.open("rb"):
            pass
    if size == 0:
        return np.empty(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def check_file(
    path: Path,
    opted_out: np.ndarray,
    out: BinaryIO,
    err: TextIO | None,
    *,
    all_or_nothing: bool = False,
) -> CheckSummary:
    """Clean ``path`` to ``out``; write one line per problem to ``err``.

    With ``all_or_nothing``, nothing reaches ``out`` when any line is invalid (the cleaned list
    is held in a temporary file until the whole input has been checked).
    """
    started = time.perf_counter()
    buf = read_buffer(path)
    if all_or_nothing:
        with tempfile.TemporaryFile() as held:
            summary, bad = clean(buf, opted_out, held)
            if not bad:
                held.seek(0)
                shutil.copyfileobj(held, out)
    else:
        summary, bad = clean(buf, opted_out, out)
    if err is not None and bad:
        err.write("".join(f"line {n}: {reason}\n" for n, reason in bad))
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def invalid_lines(summary: CheckSummary, all_or_nothing: bool) -> InvalidLines:
    """The error for a list with invalid lines (the national service's wording when whole)."""
    count = f"{summary.problems:,} {'line was' if summary.problems == 1 else 'lines were'}"
    if all_or_nothing:
        return InvalidLines(
            f"The file contains one or more invalid NHS numbers or lines ({count} invalid), "
            "so no list was returned.",
            hint="Correct the lines reported above and send the whole file again.",
        )
    return InvalidLines(
        f"{count} invalid and left out of the list (reported above with line numbers).",
        hint="Correct those lines and check them again; --all-or-nothing returns no list "
        "at all when any line is invalid.",
    )


def write_atomically(
    path: Path, fill: Callable[[BinaryIO], Any], keep: Callable[[Any], bool]
) -> Any:
    """Write ``path`` through a temporary file beside it: readers never see half a list, and
    a check that fails (or whose result ``keep`` refuses) leaves no file behind."""
    target = path.resolve()
    if target.is_dir():
        raise FileProblem(f"{target} is a folder; --out takes a file name.", hint="Give a file.")
    if not target.parent.is_dir():
        raise FileProblem(
            f"{target.parent} does not exist.", hint="Create the folder first, or give another."
        )
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as sink:
            result = fill(sink)
        if keep(result):
            os.replace(tmp, target)
        else:
            Path(tmp).unlink()
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result
