"""Find CSV records by number, fast, to give rejected rows their line number and exact bytes.

DuckDB numbers records (the header is record 1; a quoted value may hold newlines, so a record
can span lines; blank records are counted but skipped) and reports rejected ones by number. Rows
it accepted but Confide rejects (a bad date, say) are known only by their position among the
accepted rows. This module reproduces DuckDB's numbering with a vectorised scan — a newline ends
a record when the quotes since the record began are balanced — reading the file once in large
chunks and stopping after the last record asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK = 32 << 20
_NL = ord("\n")
_CR = ord("\r")
_QUOTE = ord('"')


@dataclass(frozen=True)
class Record:
    number: int  # as DuckDB counts: the header is record 1
    line: int  # 1-based physical line where the record starts
    original: bytes  # the record's bytes, line ending included


@dataclass
class _State:
    record: int = 0  # records completed
    ordinal: int = -1  # last accepted-row ordinal assigned
    start_line: int = 1  # physical line where the unfinished record starts
    pending: bytes = b""  # bytes of the unfinished record
    pending_quotes: int = 0


def find_records(
    path: Path, rejected: set[int], accepted: set[int]
) -> tuple[dict[int, Record], dict[int, Record]]:
    """Records DuckDB rejected (by record number) and rows it accepted (by 0-based ordinal
    among non-blank data records that it did not reject)."""
    by_number: dict[int, Record] = {}
    by_ordinal: dict[int, Record] = {}
    if not rejected and not accepted:
        return by_number, by_ordinal
    want_numbers = np.array(sorted(rejected), dtype=np.int64)
    want_ordinals = np.array(sorted(accepted), dtype=np.int64)
    last_number = int(want_numbers[-1]) if want_numbers.size else 0
    last_ordinal = int(want_ordinals[-1]) if want_ordinals.size else -1
    st = _State()
    with path.open("rb") as fh:
        while st.record < last_number or st.ordinal < last_ordinal:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            _scan(chunk, st, want_numbers, want_ordinals, by_number, by_ordinal)
    if st.pending and (st.record < last_number or st.ordinal < last_ordinal):
        _finish_tail(st, want_numbers, want_ordinals, by_number, by_ordinal)
    return by_number, by_ordinal


def _scan(
    chunk: bytes,
    st: _State,
    want_numbers: np.ndarray,
    want_ordinals: np.ndarray,
    by_number: dict[int, Record],
    by_ordinal: dict[int, Record],
) -> None:
    arr = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(arr == _NL)
    quotes = np.flatnonzero(arr == _QUOTE)
    if newlines.size == 0:
        st.pending += chunk
        st.pending_quotes += int(quotes.size)
        return
    quotes_before = np.searchsorted(quotes, newlines) + st.pending_quotes
    closing = (quotes_before % 2) == 0
    ends = newlines[closing]  # positions of record-ending newlines
    if ends.size == 0:
        st.pending += chunk
        st.pending_quotes += int(quotes.size)
        return
    nl_index = np.flatnonzero(closing)  # index of each end among this chunk's newlines
    n = ends.size
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts  # without the newline
    last_byte = arr[np.maximum(ends - 1, 0)]
    blank = (lengths == 0) | ((lengths == 1) & (last_byte == _CR))
    if st.pending:
        blank[0] = st.pending.strip(b"\r") == b"" and bool(blank[0])
    numbers = np.arange(st.record + 1, st.record + n + 1, dtype=np.int64)
    chunk_line = st.start_line + st.pending.count(b"\n")
    lines = np.empty(n, dtype=np.int64)
    lines[0] = st.start_line
    lines[1:] = chunk_line + nl_index[:-1] + 1
    is_rejected = np.isin(numbers, want_numbers)
    is_data = (numbers > 1) & ~blank & ~is_rejected
    ordinals = st.ordinal + np.cumsum(is_data)
    wanted_ord = is_data & np.isin(ordinals, want_ordinals)
    for idx in np.flatnonzero(is_rejected | wanted_ord).tolist():
        start, end = int(starts[idx]), int(ends[idx])
        body = chunk[start : end + 1]
        if idx == 0:
            body = st.pending + body
        rec = Record(int(numbers[idx]), int(lines[idx]), body)
        if is_rejected[idx]:
            by_number[rec.number] = rec
        else:
            by_ordinal[int(ordinals[idx])] = rec
    st.record += n
    st.ordinal = int(ordinals[-1])
    st.start_line = chunk_line + int(nl_index[-1]) + 1
    tail = int(ends[-1]) + 1
    st.pending = chunk[tail:]
    st.pending_quotes = int(quotes.size - np.searchsorted(quotes, tail))


def _finish_tail(
    st: _State,
    want_numbers: np.ndarray,
    want_ordinals: np.ndarray,
    by_number: dict[int, Record],
    by_ordinal: dict[int, Record],
) -> None:
    """The last record, when the file does not end with a newline (often a truncated file)."""
    st.record += 1
    rec = Record(st.record, st.start_line, st.pending)
    if st.record in set(want_numbers.tolist()):
        by_number[st.record] = rec
    elif st.record > 1 and st.pending.strip(b"\r\n") != b"":
        st.ordinal += 1
        if st.ordinal in set(want_ordinals.tolist()):
            by_ordinal[st.ordinal] = rec
