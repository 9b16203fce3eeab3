"""What the hub keeps of a submission after ingest: proof of what it received, and no more.

Kept, under ``<hub>/submissions/<id>/``:

- ``manifest.json`` as received: the source's signature over every file's SHA-256 digest and
  size, so the hub can always show what it was sent;
- ``receipt.json``: the manifest's own digest and the ingest counts;
- ``quarantine.parquet``: every quarantined row's table, row number, reason (and pseudonym,
  when the person was linked, so an erasure can find it);
- ``<table>.parquet``: the submitted rows that were quarantined, and only those (with their
  original ``row`` number): the records held until their patient can be linked are re-checked
  from here when the pseudonymiser links them later, and a bad row stays visible with its reason.

Never kept: the sealed identities (the hub cannot open them, but nor should it hold them), the
rows it accepted (the record store has them), rows of people who share nothing, and rows of
people it has erased.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from confide.common.submission import CLINICAL_TABLES, MANIFEST

# The quarantine names its tables as the record store does; submitted files use "episodes".
_STORED_NAME = {"episodes": "hospital_episodes"}
KEPT_FILES = frozenset({MANIFEST, "receipt.json", "quarantine.parquet"}) | {
    f"{name}.parquet" for name in CLINICAL_TABLES
}


def keep(
    target: Path,
    source_folder: Path,
    people: pa.Table,
    tables: dict[str, pa.Table],
    quarantine: pa.Table,
    counts: dict[str, Any],
    gone: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Write the minimised kept copy of a submission to ``target`` (atomically replaced).

    ``people`` is the pseudonymiser's answer (``ref``, ``pseudonym``, ``status``), ``tables``
    the submitted clinical tables as read, ``quarantine`` the validation's (table, row,
    reason) rows; rows of the people in ``gone`` (erased) are left out."""
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    manifest = (source_folder / MANIFEST).read_bytes()
    (tmp / MANIFEST).write_bytes(manifest)
    linked = people.filter(pc.equal(people.column("status"), "linked"))
    ref_to_pseudonym = dict(
        zip(
            linked.column("ref").cast(pa.int64()).to_pylist(),
            linked.column("pseudonym").to_pylist(),
            strict=True,
        )
    )
    q_tables = quarantine.column("table").to_pylist()
    q_rows = [int(r) for r in quarantine.column("row").to_pylist()]
    quarantined_rows: dict[str, list[int]] = {}
    for name, row in zip(q_tables, q_rows, strict=True):
        quarantined_rows.setdefault(name, []).append(row)
    pseudonym_of: dict[tuple[str, int], str | None] = {}
    for name in CLINICAL_TABLES:
        table = tables.get(name)
        if table is None:
            continue
        stored = _STORED_NAME.get(name, name)
        kept = _rows_kept(table, quarantined_rows.get(stored, []), ref_to_pseudonym)
        if gone:
            kept = kept.filter(pc.invert(_among(kept.column("pseudonym"), gone)))
        pq.write_table(kept, tmp / f"{name}.parquet", compression="zstd")
        for row, pseudonym in zip(
            kept.column("row").to_pylist(), kept.column("pseudonym").to_pylist(), strict=True
        ):
            pseudonym_of[(stored, int(row))] = pseudonym
    # Identity rows in quarantine are records not linked to anyone: they carry no pseudonym.
    keep_row = [
        name == "identities" or (name, row) in pseudonym_of
        for name, row in zip(q_tables, q_rows, strict=True)
    ]
    pseudonyms = pa.array(
        [pseudonym_of.get((n, r)) for n, r in zip(q_tables, q_rows, strict=True)], pa.string()
    )
    pq.write_table(
        quarantine.append_column("pseudonym", pseudonyms).filter(pa.array(keep_row, pa.bool_())),
        tmp / "quarantine.parquet",
    )
    receipt = {
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "counts": counts,
        "kept": "manifest, quarantine and quarantined rows only",
    }
    (tmp / "receipt.json").write_bytes(orjson.dumps(receipt, option=orjson.OPT_INDENT_2))
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def _rows_kept(table: pa.Table, rows: list[int], ref_to_pseudonym: dict[int, str]) -> pa.Table:
    numbered = table.append_column("row", pa.array(range(table.num_rows), pa.int64()))
    kept = numbered.filter(pc.is_in(numbered.column("row"), pa.array(sorted(rows), pa.int64())))
    refs = kept.column("ref").cast(pa.int64()).to_pylist()
    return kept.append_column(
        "pseudonym", pa.array([ref_to_pseudonym.get(r) for r in refs], pa.string())
    )


def _among(column: pa.ChunkedArray | pa.Array, values: set[str] | frozenset[str]) -> pa.Array:
    hit = pc.is_in(column, value_set=pa.array(sorted(values), pa.string()))
    return pc.fill_null(hit, False)


def erase(submissions: Path, gone: set[str]) -> int:
    """Remove these people's rows from every kept submission; returns rows removed.

    Each file is rewritten beside itself and swapped in, so a crash leaves the old or the new
    file, and running it again finishes the job."""
    if not gone or not submissions.exists():
        return 0
    removed = 0
    for path in sorted(submissions.glob("*/*.parquet")):
        table = pq.read_table(path)
        if "pseudonym" not in table.column_names:
            continue
        hit = _among(table.column("pseudonym"), gone)
        count = pc.sum(hit).as_py() or 0
        if not count:
            continue
        tmp = path.with_name(f".{path.name}.partial")
        pq.write_table(table.filter(pc.invert(hit)), tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        removed += int(count)
    return removed
