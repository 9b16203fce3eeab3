"""Cohorts: one project's people and small tables at one record-store version.

Whatever a query needs per person but that does not depend on the query itself is built once
per cohort and then reused by every query of the project on the same store version: the
project pseudonyms (a keyed hash of everyone), the patients list de-duplicated across sources,
and the project views of small tables with project pseudonyms in place. A new cohort begins
when the store changes (an ingest or an erasure) or the project's key or approval (columns,
date window) does.

Exclusions are not baked in: every query leaves out the people its exclusions name (an
anti-join on a set that is small next to the store). So a choice applies to every query that
starts after it is recorded, and costs the next query only its *membership* files: the
commitments published with each release, made once per exclusion set within the cohort.

Layout, under ``<tre>/cache/cohorts/<project>/<key>/``::

    people.parquet       pseudonym, patient_id and the approved patients columns (everyone)
    <table>.parquet      a small table's project view (everyone), written on first use
    members/<E>/         one exclusion set E:
        salt             32 hex digits, random per set: published beside each release's files
        excluded         sorted unique SHA-256(salt ":" hub pseudonym) of the store's people
                         whom their choices leave out
        contributors-H   the same for everyone with rows in the views of one set of tables
                         (H names the set; made on first use)

Releases get hard links to their membership files, so two releases with the same cohort,
exclusions and tables share their files (they had the same contributors); any others cannot
be joined. Folders are built under a temporary name and renamed into place, so a reader never
sees a half-built one; the newest :data:`KEEP` of each kind are kept.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from confide.common import canonical

KEEP = 8
MIN_AGE_SECONDS = 600  # longer than any query may run
SALT = "salt"
PEOPLE_FILE = "people.parquet"
EXCLUDED_FILE = "excluded"
_SALT_PATTERN = re.compile(r"^[0-9a-f]{32}$")

BuildStep = Callable[[Path, str], None]  # fills a new cohort folder, given its salt


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:80]


def cohort_key(**parts: object) -> str:
    """A stable name for what a cohort depends on."""
    return hashlib.sha256(canonical.dumps(parts)).hexdigest()[:32]


@dataclass(frozen=True)
class Cohort:
    """A built cohort's folder; every file in it is immutable once the folder exists."""

    folder: Path
    salt: str

    @classmethod
    def at(cls, folder: Path) -> Cohort:
        salt = (folder / SALT).read_text().strip()
        if not _SALT_PATTERN.match(salt):
            raise ValueError("a cohort's salt must be 32 hex digits")
        return cls(folder, salt)

    @property
    def people(self) -> Path:
        return self.folder / PEOPLE_FILE

    @property
    def excluded(self) -> Path:
        return self.folder / EXCLUDED_FILE

    def contributors(self, tables: Iterable[str]) -> Path:
        names = ",".join(sorted(set(tables)))
        return self.folder / f"contributors-{hashlib.sha256(names.encode()).hexdigest()[:16]}"


def open_cohort(folder: Path, build: BuildStep) -> Cohort:
    """The cohort in ``folder``, built by ``build(tmp_folder, salt)`` if it does not exist."""
    if (folder / SALT).exists():
        return Cohort.at(folder)
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir(mode=0o700)
    try:
        salt = os.urandom(16).hex()
        build(tmp, salt)
        (tmp / SALT).write_text(salt + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another query built it first: use theirs
            if not (folder / SALT).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(folder.parent, keep=folder)
    return Cohort.at(folder)


def _prune(project_folder: Path, keep: Path) -> None:
    """Remove all but the newest :data:`KEEP` folders, but none younger than
    :data:`MIN_AGE_SECONDS`: a query that started on one may still be reading it."""
    built: list[tuple[float, Path]] = []
    for path in project_folder.iterdir():
        try:
            if path.is_dir() and not path.name.startswith("."):
                built.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # removed meanwhile by another query's pruning
            continue
    built.sort(reverse=True)
    cutoff = time.time() - MIN_AGE_SECONDS
    for mtime, old in built[KEEP:]:
        if old != keep and mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def write_commitments(
    con: duckdb.DuckDBPyConnection, people_sql: str, salt: str, path: Path
) -> int:
    """Write sorted unique SHA-256(salt ":" pseudonym) of ``people_sql``'s pseudonyms to
    ``path`` (atomically); returns how many people."""
    table = con.sql(
        f"SELECT DISTINCT unhex(sha256(? || ':' || pseudonym)) AS c FROM ({people_sql}) "
        "WHERE pseudonym IS NOT NULL ORDER BY c",
        params=[salt],
    ).to_arrow_table()
    data = _packed(table.column("c").combine_chunks())
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(data) // 32


def _packed(column: pa.Array) -> bytes:
    if len(column) == 0:
        return b""
    fixed = column.cast(pa.binary(32))
    data = fixed.buffers()[1]
    return data.to_pybytes()[fixed.offset * 32 : (fixed.offset + len(fixed)) * 32]
