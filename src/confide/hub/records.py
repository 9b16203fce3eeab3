"""The record store: pseudonymised Parquet tables, one snapshot per source, swapped atomically.

Layout under ``<home>/hub/records``::

    catalog.json                      the single source of truth: which files are live
    tables/<table>/<ods>/<submission>.parquet

Each source's latest submission replaces its previous snapshot. New files are written and
fsynced first; the catalog is then replaced in one ``os.replace``; files no catalog refers to
are removed afterwards (or at the next open, after a crash). A crash at any point leaves either
the old snapshot or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from confide.common import canonical

TABLES = ("patients", "registrations", "events", "medications", "hospital_episodes", "deaths")

RECORD_SCHEMAS: dict[str, pa.Schema] = {
    "patients": pa.schema(
        [
            ("pseudonym", pa.string()),
            ("source", pa.string()),
            ("birth_year", pa.int16()),
            ("birth_month", pa.int8()),
            ("sex", pa.string()),
            ("area", pa.string()),
            ("source_kind", pa.string()),
            # How the pseudonymiser linked the record: nhs_number, probabilistic (with its
            # match weight, log2 odds), later_record or review.
            ("match_weight", pa.float64()),
            ("linked_by", pa.string()),
        ]
    ),
    "registrations": pa.schema(
        [
            ("pseudonym", pa.string()),
            ("source", pa.string()),
            ("practice", pa.string()),
            ("start_date", pa.date32()),
            ("end_date", pa.date32()),
        ]
    ),
    "events": pa.schema(
        [
            ("pseudonym", pa.string()),
            ("source", pa.string()),
            ("kind", pa.string()),
            ("system", pa.string()),
            ("code", pa.string()),
            ("date", pa.date32()),
            ("value", pa.float64()),
            ("unit", pa.string()),
            # "<", "<=", ">=", ">" when the value is a bound; a coded answer's system and code
            ("comparator", pa.string()),
            ("value_system", pa.string()),
            ("value_code", pa.string()),
        ]
    ),
    "medications": pa.schema(
        [
            ("pseudonym", pa.string()),
            ("source", pa.string()),
            ("system", pa.string()),
            ("code", pa.string()),
            ("date", pa.date32()),
            ("quantity", pa.float64()),
            ("quantity_unit", pa.string()),
        ]
    ),
    "hospital_episodes": pa.schema(
        [
            ("pseudonym", pa.string()),
            ("source", pa.string()),
            ("episode", pa.int32()),
            ("admission_date", pa.date32()),
            ("discharge_date", pa.date32()),
            ("admission_method", pa.string()),
            ("primary_diagnosis", pa.string()),
            ("diagnoses", pa.list_(pa.string())),
            ("procedures", pa.list_(pa.string())),
        ]
    ),
    "deaths": pa.schema(
        [("pseudonym", pa.string()), ("source", pa.string()), ("date_of_death", pa.date32())]
    ),
}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileJob(NamedTuple):
    """One live file to rewrite: its source's catalog entry, its table, and its path."""

    entry: dict[str, Any]
    table: str
    relative: str


class _Rewritten(NamedTuple):
    """A rewritten file: the job, the file now live for it, and how many rows it lost."""

    job: _FileJob
    relative: str
    removed: int


class RecordStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.catalog_path = folder / "catalog.json"
        # A full sweep for leftovers is needed once per opening, and again after a write that
        # failed part-way; otherwise each write removes only the files it replaced.
        self._swept = False

    # -- catalog ---------------------------------------------------------------------------
    def catalog(self) -> dict[str, Any]:
        if not self.catalog_path.exists():
            return {"version": 0, "sources": {}, "ingested": {}}
        return canonical.loads(self.catalog_path.read_bytes())

    def _write_catalog(self, catalog: dict[str, Any]) -> None:
        tmp = self.folder / ".catalog.json.tmp"
        with tmp.open("wb") as fh:
            fh.write(canonical.dumps(catalog))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.catalog_path)
        _fsync(self.folder)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """One writer at a time (across processes): hold the store's lock while changing it."""
        with (self.folder / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if not self._swept:
                    self.collect_garbage()
                    self._swept = True
                yield
            except BaseException:
                self._swept = False
                raise
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def live_files(self) -> set[Path]:
        files: set[Path] = set()
        for entry in self.catalog()["sources"].values():
            files.update(self.folder / rel for rel in entry["files"].values())
        return files

    def collect_garbage(self) -> None:
        """Remove files left by a crash or by replaced snapshots (call with the lock held)."""
        live = self.live_files()
        tables = self.folder / "tables"
        if not tables.exists():
            return
        for path in tables.rglob("*"):
            if path.is_file() and path not in live:
                path.unlink()

    # -- writing ---------------------------------------------------------------------------
    def replace_source(
        self,
        ods: str,
        submission_id: str,
        created_at: str,
        tables: dict[str, pa.Table],
        summary: dict[str, Any],
        *,
        before_commit: Any = None,
    ) -> None:
        """Make ``tables`` the live snapshot of source ``ods`` (call inside ``writing()``)."""
        files: dict[str, str] = {}
        for name in TABLES:
            table = tables.get(name, RECORD_SCHEMAS[name].empty_table()).cast(RECORD_SCHEMAS[name])
            rel = f"tables/{name}/{ods}/{submission_id}.parquet"
            path = self.folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
            files[name] = rel
            if before_commit is not None:
                before_commit(name)
        catalog = self.catalog()
        replaced = set((catalog["sources"].get(ods) or {}).get("files", {}).values())
        catalog["version"] += 1
        catalog["sources"][ods] = {
            "submission_id": submission_id,
            "created_at": created_at,
            "files": files,
        }
        catalog["ingested"][submission_id] = summary
        self._write_catalog(catalog)
        self._remove(replaced - set(files.values()))

    def add_rows(
        self, additions: dict[str, dict[str, pa.Table]], update: Callable[[dict], None]
    ) -> None:
        """Append rows to live snapshots (``{ods: {table: rows}}``) and let ``update`` change
        the catalog, in one swap (call inside ``writing()``). Used when records held back at
        ingest are linked later; each snapshot keeps its submission id."""
        catalog = self.catalog()
        version = catalog["version"] + 1
        replaced = set()
        for ods, tables in additions.items():
            files = catalog["sources"][ods]["files"]
            for name, rows in tables.items():
                if rows.num_rows == 0:
                    continue
                rel = files[name]
                merged = pa.concat_tables(
                    [pq.read_table(self.folder / rel), rows.cast(RECORD_SCHEMAS[name])],
                    promote_options="permissive",
                ).cast(RECORD_SCHEMAS[name])
                new_rel = re.sub(r"(\.v\d+)?\.parquet$", f".v{version}.parquet", rel)
                pq.write_table(merged, self.folder / new_rel, compression="zstd")
                with (self.folder / new_rel).open("rb") as fh:
                    os.fsync(fh.fileno())
                files[name] = new_rel
                replaced.add(rel)
        catalog["version"] = version
        update(catalog)
        self._write_catalog(catalog)
        self._remove(replaced)

    def _remove(self, relative_paths: set[str]) -> None:
        for rel in relative_paths:
            (self.folder / rel).unlink(missing_ok=True)

    def rewrite(self, transform: Any, *, workers: int = 2) -> int:
        """Rewrite every live file through ``transform(table_name, arrow_table) -> table`` and
        swap the catalog once (used for erasure). Files are independent, so they are rewritten
        a few at a time (Parquet decoding and encoding release the GIL). Returns rows removed."""
        catalog = self.catalog()
        new_version = catalog["version"] + 1
        jobs = [
            _FileJob(entry, name, rel)
            for entry in catalog["sources"].values()
            for name, rel in list(entry["files"].items())
        ]

        def one(job: _FileJob) -> _Rewritten:
            before = pq.read_table(self.folder / job.relative)
            after = transform(job.table, before)
            gone = before.num_rows - after.num_rows
            if not gone:
                return _Rewritten(job, job.relative, 0)
            new_rel = re.sub(r"(\.v\d+)?\.parquet$", f".v{new_version}.parquet", job.relative)
            pq.write_table(after, self.folder / new_rel, compression="zstd")
            with (self.folder / new_rel).open("rb") as fh:
                os.fsync(fh.fileno())
            return _Rewritten(job, new_rel, gone)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            done = [result for result in pool.map(one, jobs) if result.removed]
        removed = sum(result.removed for result in done)
        replaced = {result.job.relative for result in done}
        for result in done:
            result.job.entry["files"][result.job.table] = result.relative
        if removed:
            catalog["version"] = new_version
            self._write_catalog(catalog)
            self._remove(replaced)
        return removed

    # -- reading ---------------------------------------------------------------------------
    def files(self, table: str, catalog: dict[str, Any] | None = None) -> list[Path]:
        """The live files of ``table`` (in ``catalog``, a snapshot, when given)."""
        catalog = catalog if catalog is not None else self.catalog()
        return [Path(f) for f in self.listing(catalog).get(table, [])]

    def listing(self, catalog: dict[str, Any]) -> dict[str, list[str]]:
        """Every table's live file paths in ``catalog``, sorted, in one pass (a store of
        thousands of sources lists tens of thousands of files)."""
        folder = str(self.folder)
        out: dict[str, list[str]] = {}
        for entry in catalog["sources"].values():
            for table, relative in entry["files"].items():
                out.setdefault(table, []).append(os.path.join(folder, relative))
        for paths in out.values():
            paths.sort()
        return out

    def attach(
        self,
        con: duckdb.DuckDBPyConnection,
        prefix: str = "",
        catalog: dict[str, Any] | None = None,
        tables: Iterable[str] | None = None,
    ) -> dict[str, list[str]]:
        """Create one view per table over the live files (an empty typed view when none).

        ``catalog``: a snapshot read earlier with :meth:`catalog`, so every table comes from
        one version even if a write lands meanwhile (read once here when not given).
        ``tables``: only these (the patients views are always made). Returns the file
        listing used (:meth:`listing`), so callers need not list the store again.

        Each source sends its own demographics for a person, so the stored patients table has
        a row per person per source; the ``patients`` view keeps one row per person (the GP
        practice's record first), and ``patient_sources`` shows every source's row.
        """
        catalog = catalog if catalog is not None else self.catalog()
        every = self.listing(catalog)
        wanted = set(TABLES if tables is None else tables) | {"patients"}
        for name in TABLES:
            if name not in wanted:
                continue
            stored = "patient_sources" if name == "patients" else name
            files = every.get(name, [])
            if files:
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                # By name: files written before a column was added read it as null.
                con.execute(
                    f"CREATE OR REPLACE VIEW {prefix}{stored} AS "
                    f"SELECT * FROM read_parquet([{listing}], union_by_name = true)"
                )
            else:
                con.register(f"_{prefix}{name}_empty", RECORD_SCHEMAS[name].empty_table())
                con.execute(
                    f"CREATE OR REPLACE VIEW {prefix}{stored} AS "
                    f"SELECT * FROM _{prefix}{name}_empty"
                )
        con.execute(
            f"CREATE OR REPLACE VIEW {prefix}patients AS "
            "SELECT pseudonym, source, birth_year, birth_month, sex, area, source_kind, "
            "match_weight, linked_by FROM ("
            "  SELECT *, row_number() OVER (PARTITION BY pseudonym"
            "    ORDER BY source_kind = 'practice' DESC, source) AS choice"
            f"  FROM {prefix}patient_sources) WHERE choice = 1"
        )
        return every

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        self.attach(con)
        return con

    def wipe(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
