"""Differencing: hold an output whose cells differ from already released ones by a few people.

Two released cells whose people differ by one person reveal that person's contribution by
subtraction, whatever each cell's own checks said. The cell-key method makes that subtraction
noisy; this check stops the attack from being repeated until the noise averages out. For every
released cell (and each measure's set of contributors) the TRE keeps a *sketch* of who
contributed: an invertible Bloom lookup table of 64 buckets, each holding a count, the XOR of
the contributors' 60-bit sketch ids and the XOR of their check values, one bucket in each of
four sub-tables per person (computed in SQL by
:mod:`confide.tre.aggregation`; ids are keyed hashes only the TRE can compute, so a sketch says
nothing outside it). Subtracting two sketches leaves exactly the people in one set and not the
other; *peeling* it recovers them when they are few. A new output with any cell whose set
differs from a cell of the same output, or of an earlier release of the project, by fewer than
the threshold people goes to the two output checkers with the overlaps listed.

Identical sets count too, unless both cells are *the same cell*: the same population, the same
measure and the same keys (a repeated query, or a margin asked again). Otherwise the hold
itself would answer a question: a query built to differ from an earlier one by one person if a
fact is true, and by nobody if it is false, would be held in one case and released in the
other. Held either way, it tells the researcher nothing.

Sketched sets: the people of each released count, and the contributors of each released sum;
only like is compared with like (a count with a count, a sum of one value with a sum of the
same value). Means and quantiles are not sums of their people, so they cannot be differenced
by subtraction.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from confide.tre.cellkey import BUCKETS, HASHES, buckets_of, check_of

MAX_PEELED = 64


@dataclass(frozen=True)
class CellSketch:
    """The sketch of one released set: where it was released and its buckets."""

    release: str  # release or query id ("" for the output being checked)
    cell: str  # a readable cell name: measure and keys
    people: int
    identity: str  # the cell as defined: population, measure, level and keys (a digest)
    kind: str  # what is released of the set: "count", or "sum <expression>"
    counts: np.ndarray  # int64[BUCKETS]
    ids: np.ndarray  # int64[BUCKETS]
    checks: np.ndarray  # int64[BUCKETS]


@dataclass(frozen=True)
class Overlap:
    """Two released sets that differ by ``people`` (1 to threshold - 1) people."""

    cell: str
    other_release: str
    other_cell: str
    people: int | None  # None: few, but not recovered exactly

    def describe(self) -> str:
        where = f"release {self.other_release}" if self.other_release else "this output"
        if self.people is None:
            return f"{self.cell} differs from {self.other_cell} of {where} by a few people"
        if self.people == 0:
            return f"{self.cell} has exactly the people of {self.other_cell} of {where}"
        return (
            f"{self.cell} differs from {self.other_cell} of {where} by {self.people} "
            f"{'person' if self.people == 1 else 'people'}"
        )


def sketches_from_rows(
    rows: Iterable[Mapping[str, Any]],
    names: Sequence[str],
    describe: Mapping[tuple[Any, ...], tuple[str, int, str, str]],
    dims: int,
) -> list[CellSketch]:
    """Assemble sketches from the aggregation's sketch rows. ``names``: the sketched sets
    (``""`` for a cell's people, else a measure's name), in the order of the SQL's columns;
    ``describe``: (level, keys, set name) -> (cell name, people, identity, kind) for the
    released sets only."""
    built: dict[tuple[Any, ...], list[np.ndarray]] = {}
    for row in rows:
        level = int(row["__level"])
        keys = tuple(row.get(f"__d{i}") for i in range(dims))
        bucket = int(row["__bucket"])
        for index, name in enumerate(names):
            key = (level, keys, name)
            if key not in describe:
                continue
            arrays = built.setdefault(key, [np.zeros(BUCKETS, np.int64) for _ in range(3)])
            arrays[0][bucket] = int(row[f"__c{index}"] or 0)
            arrays[1][bucket] = int(row[f"__x{index}"] or 0)
            arrays[2][bucket] = int(row[f"__h{index}"] or 0)
    return [CellSketch("", *describe[key], *arrays) for key, arrays in built.items()]


def difference(a: CellSketch, b: CellSketch) -> int | None:
    """How many people are in exactly one of the two sets, when few enough to recover; None
    when the difference is too large to decode (many people)."""
    counts = a.counts - b.counts
    ids = a.ids ^ b.ids
    checks = a.checks ^ b.checks
    return _peel(counts.copy(), ids.copy(), checks.copy())


def _peel(counts: np.ndarray, ids: np.ndarray, checks: np.ndarray) -> int | None:
    found = 0
    progress = True
    while progress and found <= MAX_PEELED:
        progress = False
        for bucket in np.flatnonzero((counts == 1) | (counts == -1)):
            sid = int(ids[bucket])
            if counts[bucket] not in (1, -1) or sid <= 0 or check_of(sid) != int(checks[bucket]):
                continue
            places = buckets_of(sid)
            if bucket not in places:
                continue
            sign = int(counts[bucket])
            for place in places:
                counts[place] -= sign
                ids[place] ^= sid
                checks[place] ^= check_of(sid)
            found += 1
            progress = True
    if counts.any() or ids.any() or checks.any():
        return None
    return found


def find_overlaps(
    new: Sequence[CellSketch], earlier: Sequence[CellSketch], threshold: int
) -> list[Overlap]:
    """Every pair (new, new) and (new, earlier) of the same kind (counts with counts, sums of
    one value with sums of it) whose sets differ by fewer than the threshold, unless they are
    the same cell asked again."""
    overlaps: list[Overlap] = []
    if not new:
        return overlaps
    candidates = list(earlier) + list(new)
    if not candidates:
        return overlaps
    people = np.array([candidate.people for candidate in candidates])
    for i, sketch in enumerate(new):
        near = np.flatnonzero(np.abs(people - sketch.people) < threshold)
        for index in near:
            other = candidates[index]
            own = index >= len(earlier)
            if own and index - len(earlier) <= i:
                continue  # each pair within the new output once, never a set with itself
            if other.kind != sketch.kind:
                continue  # a count cannot be subtracted from a sum
            if _too_different(sketch, other, threshold):
                continue
            size = difference(sketch, other)
            if size is None:
                # Few buckets differ, yet the difference does not peel (a rare collision of
                # ids): it may be small, so it is treated as small.
                overlaps.append(Overlap(sketch.cell, other.release, other.cell, None))
                continue
            if size >= threshold:
                continue
            if size == 0 and sketch.identity == other.identity:
                continue  # the same cell asked again: the same answer, nothing new
            overlaps.append(Overlap(sketch.cell, other.release, other.cell, size))
    return overlaps


def new_sketches(sketches: Sequence[CellSketch], earlier: Sequence[CellSketch]) -> list[CellSketch]:
    """The sketches not already kept: a cell asked again (the same cell, the same people) is
    not stored twice, so a project's history grows with what it learns, not with repeats."""
    kept = {_fingerprint(sketch) for sketch in earlier}
    return [sketch for sketch in sketches if _fingerprint(sketch) not in kept]


def _fingerprint(sketch: CellSketch) -> tuple[str, str, bytes, bytes]:
    """What makes two sketches the same kept sketch: the cell, its kind and its people."""
    return (sketch.identity, sketch.kind, sketch.ids.tobytes(), sketch.counts.tobytes())


def _too_different(a: CellSketch, b: CellSketch, threshold: int) -> bool:
    """A cheap bound: each differing person touches one bucket of each sub-table, so more
    nonzero buckets in the difference than that many times T - 1 means at least T people
    differ."""
    busy = int(np.count_nonzero((a.counts != b.counts) | (a.ids != b.ids)))
    return busy > HASHES * (threshold - 1)


def _safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_" else "_" for char in name)[:80]


class SketchStore:
    """Released cells' sketches, one Parquet file per release under the TRE's private folder
    (``<tre>/sketches/<organisation>/<project>/<release>.parquet``).

    A new output is checked against every release of its organisation, not only its own
    project's: the people behind a cell are the same in every project (sketches are built from
    the TRE's record keys, not from project pseudonyms), so two projects of one organisation
    could otherwise difference each other's cells."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _project(self, organisation_id: str, project_id: str) -> Path:
        return self.folder / _safe(organisation_id) / _safe(project_id)

    def load(self, organisation_id: str) -> list[CellSketch]:
        """Every released cell's sketch of the organisation's projects."""
        folder = self.folder / _safe(organisation_id)
        if not folder.exists():
            return []
        out: list[CellSketch] = []
        for path in sorted(folder.glob("*/*.parquet")):
            table = pq.read_table(path)
            for row in table.to_pylist():
                out.append(
                    CellSketch(
                        row["release"],
                        row["cell"],
                        int(row["people"]),
                        str(row.get("identity") or ""),
                        str(row.get("kind") or "count"),
                        np.array(row["counts"], np.int64),
                        np.array(row["ids"], np.int64),
                        np.array(row["checks"], np.int64),
                    )
                )
        return out

    def path(self, organisation_id: str, project_id: str, release_id: str) -> Path:
        folder = self._project(organisation_id, project_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder / f"{release_id}.parquet"

    def save(
        self,
        organisation_id: str,
        project_id: str,
        release_id: str,
        sketches: Sequence[CellSketch],
    ) -> None:
        """Keep a release's sketches, so later outputs are checked against it."""
        if sketches:
            path = self.path(organisation_id, project_id, release_id)
            self.write(path, release_id, sketches)

    @staticmethod
    def write(path: Path, release_id: str, sketches: Sequence[CellSketch]) -> None:
        """Write sketches to ``path`` atomically (a held output's wait in the pending folder)."""
        table = pa.table(
            {
                "release": [release_id] * len(sketches),
                "cell": [sketch.cell for sketch in sketches],
                "people": [sketch.people for sketch in sketches],
                "identity": [sketch.identity for sketch in sketches],
                "kind": [sketch.kind for sketch in sketches],
                "counts": [sketch.counts.tolist() for sketch in sketches],
                "ids": [sketch.ids.tolist() for sketch in sketches],
                "checks": [sketch.checks.tolist() for sketch in sketches],
            }
        )
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
