"""Project views: THE one place where people's choices and a project's approval meet the data.

:func:`build_views` is the only way the TRE gives a query something to read. For one project
it creates, on a fresh DuckDB connection, one view per approved table that

* has only the approved columns, plus ``patient_id``;
* has only rows inside the approved date window (:data:`confide.tre.dialects.WINDOW_RULES`);
* has no rows of people whose choices exclude them (an anti-join on every query, against the
  exclusions asked for at its start);
* carries ``patient_id`` = the first 128 bits (hex) of HMAC-SHA256(project key, hub pseudonym)
  in place of the hub pseudonym, so two projects' outputs can never be joined on person.

The people table (``__people``: hub pseudonym → project pseudonym and the approved patients
columns, without excluded people) is the hub's ``patients`` list, read from the project's
current cohort (:mod:`confide.tre.cohorts`), built once per store version: a row of any other
table whose person has no ``patients`` row is left out (failing closed).
The per-person SQL (each person's ``patients`` row, the HMAC computed inside DuckDB so no
per-person Python work is needed, the date windows) comes from :mod:`confide.tre.dialects`,
shared with the Spark builder; the test suite checks the HMAC against a reference HMAC.
Internal names start with ``__``, which the guard refuses in researchers' SQL.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from confide.access.model import ProjectGrant
from confide.common.errors import InvalidInput
from confide.hub.records import RECORD_SCHEMAS, RecordStore
from confide.tre.aggregation import RECORD_KEYS
from confide.tre.cellkey import BUCKET_COLUMNS
from confide.tre.cohorts import (
    EXCLUDED_FILE,
    PEOPLE_FILE,
    Cohort,
    cohort_key,
    open_cohort,
    safe_name,
    write_commitments,
)
from confide.tre.dialects import (
    DUCKDB,
    PSEUDONYM_HEX,
    hmac_pads,
    quote,
    window_filter,
    window_literals,
)
from confide.tre.exclusions import pseudonyms_digest
from confide.tre.guard import PATIENT_COLUMN

PEOPLE = "__people"
EXCLUDED = "__excluded"
EXCLUDED_IDS = "__excluded_ids"
EXCLUDED_IDS_FILE = "excluded-ids.parquet"  # the excluded people's project pseudonyms
COHORT_LAYOUT = 4  # bumped whenever a cohort's files change, so older caches are not reused
EVERYONE = "__everyone"
RECORD_KEY_COLUMNS = ("__rkey", "__sid", "__chk", *BUCKET_COLUMNS)
RAW = "__raw_"
# A table whose stored files total at most this is copied into the cohort, joined and filtered,
# the first time a query of the cohort reads it (larger tables are joined on every query).
MATERIALISE_BYTES = 64 * 1024 * 1024

_HIDDEN_COLUMNS = frozenset({"pseudonym"})


@dataclass(frozen=True)
class ProjectViews:
    """What :func:`build_views` made: the guard's allowlist, the files the query may read and
    the cohort the views show."""

    allowed: dict[str, set[str]]
    readable: tuple[str, ...]
    cohort: Cohort
    window: dict[str, str]
    members: Cohort  # this query's exclusion set within the cohort: salt and membership files


def approved_columns(grant: ProjectGrant) -> dict[str, list[str]]:
    """The approved columns of each approved table, in store order (unknown ones refused)."""
    out: dict[str, list[str]] = {}
    for table, columns in grant.tables.items():
        schema = RECORD_SCHEMAS.get(table)
        if schema is None:
            raise InvalidInput(f"The project is approved for {table!r}, which is not a table.")
        wanted = set(columns)
        unknown = sorted(wanted - set(schema.names))
        if unknown:
            raise InvalidInput(
                f"The project is approved for columns {', '.join(unknown)} of {table}, which "
                "the record store does not have."
            )
        shown = wanted - _HIDDEN_COLUMNS
        out[table] = [name for name in schema.names if name in shown]
    return out


def view_columns(grant: ProjectGrant) -> dict[str, set[str]]:
    """The guard's allowlist for ``grant``: approved columns plus ``patient_id``."""
    return {table: {*cols, PATIENT_COLUMN} for table, cols in approved_columns(grant).items()}


def project_pseudonym(project_key: bytes, hub_pseudonym: str) -> str:
    """The reference computation of one project pseudonym (tests and audits use it)."""
    digest = hmac.new(project_key, hub_pseudonym.encode(), sha256).hexdigest()
    return digest[:PSEUDONYM_HEX]


def build_views(
    con: duckdb.DuckDBPyConnection,
    records: RecordStore,
    grant: ProjectGrant,
    excluded_pseudonyms: pa.Array,
    project_key: bytes,
    *,
    cohorts: Path,
    cache: Path | None = None,
    catalog: dict[str, Any] | None = None,
    exclusions_digest: str | None = None,
    materialise: Iterable[str] = (),
    record_key: bytes | None = None,
) -> ProjectViews:
    """Create the project's views on ``con`` (a fresh connection); lock it down afterwards.

    ``cohorts``: the private folder of built cohorts (see :mod:`confide.tre.cohorts`); the
    project's people are read from its cohort, built here when it is new, and the excluded
    left out.
    ``cache``: where the project's pseudonym mapping (everyone in the store, before
    exclusions) is kept per store version, so the keyed hash runs once per snapshot.
    ``catalog``: the record-store snapshot to read (the one exclusions were computed for).
    ``materialise``: tables the query reads; those of at most :data:`MATERIALISE_BYTES` in the
    store are written once into the cohort as the view's exact rows, so later queries of the
    cohort read one file with no join.
    ``record_key``: the TRE's secret for people's record keys (:mod:`confide.tre.cellkey`);
    the cohort keeps each person's, and ``__record_keys`` shows them to the system's
    aggregation (never to researchers' SQL, which cannot name ``__`` relations).
    """
    if len(project_key) < 16:
        raise ValueError("a project key must be at least 16 bytes")
    record_key = record_key or project_key
    columns = approved_columns(grant)
    catalog = catalog if catalog is not None else records.catalog()
    version = int(catalog["version"])
    listing = records.attach(con, prefix=RAW, catalog=catalog, tables=columns)
    # Each person's patients row, chosen by the SQL the Spark builder runs too.
    con.execute(
        f"CREATE OR REPLACE VIEW {RAW}patients AS {DUCKDB.patients(f'{RAW}patient_sources')}"
    )
    excluded = pa.array(excluded_pseudonyms, pa.string())
    fingerprint = sha256(b"confide-project-key:" + project_key).hexdigest()[:16]
    record_fingerprint = sha256(b"confide-record-key:" + record_key).hexdigest()[:16]
    window = window_literals(grant.window_start, grant.window_end)
    patient_columns = columns.get("patients", [])
    key = cohort_key(
        layout=COHORT_LAYOUT,
        project=grant.project_id,
        key=fingerprint,
        record_key=record_fingerprint,
        version=version,
        columns=columns,
        window=[window["start"], window["end"]],
    )

    def build(folder: Path, salt: str) -> None:
        _build_cohort(con, folder, grant, project_key, version, patient_columns, cache, record_key)

    cohort = open_cohort(cohorts / safe_name(grant.project_id) / key, build)
    stored_people = f"read_parquet({_path(cohort.people)})"
    con.register(f"{EXCLUDED}_arrow", pa.table({"pseudonym": excluded}))
    con.execute(f"CREATE TEMP TABLE {EXCLUDED} AS SELECT DISTINCT pseudonym FROM {EXCLUDED}_arrow")
    con.unregister(f"{EXCLUDED}_arrow")
    # Exclusions apply on every query: the cohort holds everyone in the store version.
    con.execute(
        f"CREATE TEMP VIEW {PEOPLE} AS SELECT p.* FROM {stored_people} p "
        f"ANTI JOIN {EXCLUDED} e ON e.pseudonym = p.pseudonym"
    )
    digest = exclusions_digest or pseudonyms_digest(excluded)

    def build_members(folder: Path, salt: str) -> None:
        write_commitments(
            con,
            f"SELECT e.pseudonym FROM {EXCLUDED} e "
            f"SEMI JOIN {RAW}patient_sources r ON r.pseudonym = e.pseudonym",
            salt,
            folder / EXCLUDED_FILE,
        )
        con.execute(
            f"COPY (SELECT p.{PATIENT_COLUMN} FROM {stored_people} p "
            f"SEMI JOIN {EXCLUDED} e ON e.pseudonym = p.pseudonym) "
            f"TO {_path(folder / EXCLUDED_IDS_FILE)} (FORMAT parquet)"
        )

    members = open_cohort(cohort.folder / "members" / digest[:32], build_members)
    excluded_ids = members.folder / EXCLUDED_IDS_FILE
    con.execute(
        f"CREATE TEMP VIEW {EXCLUDED_IDS} AS SELECT * FROM read_parquet({_path(excluded_ids)})"
    )
    keys = ", ".join(RECORD_KEY_COLUMNS)
    con.execute(f"CREATE TEMP VIEW {RECORD_KEYS} AS SELECT {PATIENT_COLUMN}, {keys} FROM {PEOPLE}")
    readable: list[str] = [str(cohort.people), str(excluded_ids)]
    wanted = set(materialise)
    for table, cols in columns.items():
        if table == "patients":
            selected = ", ".join([PATIENT_COLUMN, *(quote(column) for column in cols)])
            con.execute(f"CREATE VIEW patients AS SELECT {selected} FROM {PEOPLE}")
            continue
        selected = ", ".join([f"p.{PATIENT_COLUMN}", *(f"t.{quote(column)}" for column in cols)])
        joined = (
            f"SELECT {selected} FROM {RAW}{table} t "
            f"JOIN {{people}} p ON p.pseudonym = t.pseudonym{window_filter(table, window)}"
        )
        files = listing.get(table, [])
        readable.extend(files)  # contributor commitments read the store's rows
        stored = cohort.folder / f"{table}.parquet"
        if not stored.exists() and table in wanted and _small(files):
            _materialise(con, joined.format(people=stored_people), stored)
        if stored.exists():
            con.execute(
                f"CREATE VIEW {table} AS SELECT t.* FROM read_parquet({_path(stored)}) t "
                f"ANTI JOIN {EXCLUDED_IDS} x ON x.{PATIENT_COLUMN} = t.{PATIENT_COLUMN}"
            )
            readable.append(str(stored))
        else:
            con.execute(f"CREATE VIEW {table} AS {joined.format(people=PEOPLE)}")
    return ProjectViews(
        allowed={table: {*cols, PATIENT_COLUMN} for table, cols in columns.items()},
        readable=tuple(readable),
        cohort=cohort,
        window=window,
        members=members,
    )


def _small(files: list[str]) -> bool:
    return sum(os.path.getsize(path) for path in files) <= MATERIALISE_BYTES


def _materialise(con: duckdb.DuckDBPyConnection, definition: str, path: Path) -> None:
    """Write a view's rows into the cohort (atomically: readers see all of it or none)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    con.execute(f"COPY ({definition}) TO {_path(tmp)} (FORMAT parquet)")
    os.replace(tmp, path)


def _build_cohort(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    grant: ProjectGrant,
    project_key: bytes,
    version: int,
    patient_columns: list[str],
    cache: Path | None,
    record_key: bytes,
) -> None:
    """Write a new cohort's people: everyone in the store version, with project pseudonyms,
    the approved patients columns and their hidden record keys (exclusions are applied by each
    query)."""
    mapping = _mapping(con, project_key, grant.project_id, version, cache)
    extra = "".join(f", r.{quote(column)}" for column in patient_columns)
    people = folder / PEOPLE_FILE
    outer, inner = hmac_pads(record_key)
    hmac_hex = DUCKDB.hmac_hex("?::BLOB", "?::BLOB", "m.pseudonym")
    con.execute(
        f"COPY (SELECT m.pseudonym, m.{PATIENT_COLUMN}{extra}, "
        f"{', '.join(DUCKDB.record_keys('__h'))} FROM (SELECT m.*, {hmac_hex} AS __h "
        f"FROM {mapping} m) m JOIN {RAW}patients r ON r.pseudonym = m.pseudonym) "
        f"TO {_path(people)} (FORMAT parquet)",
        [outer, inner],
    )
    if cache is None:
        con.execute(f"DROP TABLE IF EXISTS {EVERYONE}")


def _path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _mapping(
    con: duckdb.DuckDBPyConnection,
    project_key: bytes,
    project_id: str,
    version: int,
    cache: Path | None,
) -> str:
    """SQL naming hub pseudonym → project pseudonym for everyone in the store: a cached
    Parquet file per store version when ``cache`` is given, else a temporary table."""
    fingerprint = sha256(b"confide-project-key:" + project_key).hexdigest()[:16]
    safe = safe_name(project_id)
    path = cache / f"{safe}-{fingerprint}-v{version}.parquet" if cache else None
    if path is not None and path.exists():
        return f"read_parquet({_path(path)})"
    outer, inner = hmac_pads(project_key)
    pseudonym_hex = DUCKDB.pseudonym_hex("?::BLOB", "?::BLOB", "pseudonym")
    con.execute(
        f"CREATE TEMP TABLE {EVERYONE} AS "
        f"SELECT pseudonym, {pseudonym_hex} AS {PATIENT_COLUMN} "
        f"FROM (SELECT DISTINCT pseudonym FROM {RAW}patient_sources WHERE pseudonym IS NOT NULL)",
        [outer, inner],
    )
    if path is None:
        return EVERYONE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    con.execute(f"COPY {EVERYONE} TO {_path(tmp)} (FORMAT parquet)")
    con.execute(f"DROP TABLE {EVERYONE}")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    for old in path.parent.glob(f"{safe}-*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)
    return f"read_parquet({_path(path)})"


def contributor_commitments(
    con: duckdb.DuckDBPyConnection, views: ProjectViews, tables: Iterable[str]
) -> Path:
    """The cohort's commitments for everyone with rows in ``tables`` (after exclusions and
    the date window), written on first use: see :mod:`confide.tre.cohorts`."""
    names = sorted(set(tables))
    path = views.members.contributors(names)
    if path.exists():
        return path
    if not names or "patients" in names:  # the patients view holds everyone the others can
        people_sql = f"SELECT pseudonym FROM {PEOPLE}"
    else:
        people_sql = " UNION ".join(
            f"SELECT t.pseudonym FROM {RAW}{name} t SEMI JOIN {PEOPLE} p "
            f"ON p.pseudonym = t.pseudonym{window_filter(name, views.window)}"
            for name in names
        )
    write_commitments(con, people_sql, views.members.salt, path)
    return path
