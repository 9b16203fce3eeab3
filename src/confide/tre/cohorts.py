"""Cohorts: one project's people at one record-store version under one set of exclusions.

Whatever a query needs per person but that does not depend on the query itself is built once
per cohort and then reused by every query that sees the same cohort: the project pseudonyms
(a keyed hash of everyone), the patients list de-duplicated across sources, the membership
commitments published with each release. A new cohort begins when anything it depends on
changes: the store (an ingest or an erasure), who is excluded (a choice), the project's key or
its approval (columns, date window). So a choice still applies to every query that starts
after it is recorded; it only costs the next query the cohort's build.

Layout, under ``<tre>/cache/cohorts/<project>/<key>/``::

    people.parquet   pseudonym, patient_id and the approved patients columns, after exclusions
    excluded         sorted unique SHA-256(salt ":" hub pseudonym) of the store's people whom
                     their choices leave out
    contributors-H   the same for everyone with rows in the views of one set of tables
                     (H names the set; made on first use)
    salt             32 hex digits, random per cohort: published beside each release's files

Releases get hard links to their cohort's files, so two releases of one cohort share their
files (they had the same contributors); releases of different cohorts cannot be joined.
Folders are built under a temporary name and renamed into place, so a reader never sees a
half-built cohort; the newest :data:`KEEP` cohorts of a project are kept.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from confide.common import canonical

KEEP = 8
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
    built = [p for p in project_folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    built.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[KEEP:]:
        if old != keep:
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
