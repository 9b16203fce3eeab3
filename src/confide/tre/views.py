"""Project views: THE one place where people's choices and a project's approval meet the data.

:func:`build_views` is the only way the TRE gives a query something to read. For one project
it creates, on a fresh DuckDB connection, one view per approved table that

* has only the approved columns, plus ``patient_id``;
* has only rows inside the approved date window (:data:`WINDOW_RULES`);
* has no rows of people whose choices exclude them (an anti-join on the hub pseudonym, done
  once when the people table is built);
* carries ``patient_id`` = the first 128 bits (hex) of HMAC-SHA256(project key, hub pseudonym)
  in place of the hub pseudonym, so two projects' outputs can never be joined on person.

The people table (``__people``: hub pseudonym → project pseudonym, without excluded people) is
the hub's ``patients`` list: a row of any other table whose person has no ``patients`` row is
left out (failing closed). The HMAC is computed inside DuckDB from SHA-256 (RFC 2104:
H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))), so no per-person Python work is needed; the test suite
checks it against a reference HMAC. Internal names start with ``__``, which the guard refuses
in researchers' SQL.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from hashlib import sha256
from pathlib import Path

import duckdb
import pyarrow as pa

from confide.access.model import ProjectGrant
from confide.common.errors import InvalidInput
from confide.hub.records import SCHEMAS, RecordStore
from confide.tre.guard import PATIENT_COLUMN

PEOPLE = "__people"
EXCLUDED = "__excluded"
EVERYONE = "__everyone"
RAW = "__raw_"
PSEUDONYM_HEX = 32

# table → how its rows meet the window [start, end] (None: not restricted by date).
WINDOW_RULES: dict[str, str | None] = {
    "patients": None,
    "registrations": "t.start_date <= {end} AND (t.end_date IS NULL OR t.end_date >= {start})",
    "events": "t.date BETWEEN {start} AND {end}",
    "medications": "t.date BETWEEN {start} AND {end}",
    "hospital_episodes": "t.admission_date BETWEEN {start} AND {end}",
    "deaths": "t.date_of_death BETWEEN {start} AND {end}",
}
_HIDDEN_COLUMNS = frozenset({"pseudonym"})


@dataclass(frozen=True)
class ProjectViews:
    """What :func:`build_views` made: the guard's allowlist and the files the query may read."""

    allowed: dict[str, set[str]]
    readable: tuple[Path, ...]


def approved_columns(grant: ProjectGrant) -> dict[str, list[str]]:
    """The approved columns of each approved table, in store order (unknown ones refused)."""
    out: dict[str, list[str]] = {}
    for table, columns in grant.tables.items():
        schema = SCHEMAS.get(table)
        if schema is None:
            raise InvalidInput(f"The project is approved for {table!r}, which is not a table.")
        wanted = set(columns)
        unknown = sorted(wanted - set(schema.names))
        if unknown:
            raise InvalidInput(
                f"The project is approved for columns {', '.join(unknown)} of {table}, which "
                "the record store does not have."
            )
        out[table] = [c for c in schema.names if c in wanted and c not in _HIDDEN_COLUMNS]
    return out


def view_columns(grant: ProjectGrant) -> dict[str, set[str]]:
    """The guard's allowlist for ``grant``: approved columns plus ``patient_id``."""
    return {t: {*cols, PATIENT_COLUMN} for t, cols in approved_columns(grant).items()}


def project_pseudonym(project_key: bytes, hub_pseudonym: str) -> str:
    """The reference computation of one project pseudonym (tests and audits use it)."""
    digest = hmac.new(project_key, hub_pseudonym.encode(), sha256).hexdigest()
    return digest[:PSEUDONYM_HEX]


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > 64:
        key = sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x5C for b in key), bytes(b ^ 0x36 for b in key)


def _date(value: date) -> str:
    return f"DATE '{date.fromisoformat(str(value)).isoformat()}'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_views(
    con: duckdb.DuckDBPyConnection,
    records: RecordStore,
    grant: ProjectGrant,
    excluded_pseudonyms: pa.Array,
    project_key: bytes,
    *,
    cache: Path | None = None,
) -> ProjectViews:
    """Create the project's views on ``con`` (a fresh connection); lock it down afterwards.

    ``cache``: a private folder where the project's pseudonym mapping (everyone in the store,
    before exclusions) is kept per record-store version, so the keyed hash runs once per
    snapshot rather than once per query. Exclusions are applied on every call regardless."""
    if len(project_key) < 16:
        raise ValueError("a project key must be at least 16 bytes")
    columns = approved_columns(grant)
    version = int(records.catalog()["version"])
    records.attach(con, prefix=RAW)
    excluded = pa.table({"pseudonym": pa.array(excluded_pseudonyms, pa.string())})
    con.register(f"{EXCLUDED}_arrow", excluded)
    con.execute(f"CREATE TEMP TABLE {EXCLUDED} AS SELECT DISTINCT pseudonym FROM {EXCLUDED}_arrow")
    con.unregister(f"{EXCLUDED}_arrow")
    _load_everyone(con, project_key, grant.project_id, version, cache)
    con.execute(
        f"CREATE TEMP TABLE {PEOPLE} AS SELECT * FROM {EVERYONE} ANTI JOIN {EXCLUDED} "
        "USING (pseudonym)"
    )
    con.execute(f"DROP TABLE {EVERYONE}")
    window = {"start": _date(grant.window_start), "end": _date(grant.window_end)}
    readable: set[Path] = set(records.files("patients"))
    for table, cols in columns.items():
        selected = ", ".join([f"p.{PATIENT_COLUMN}", *(f"t.{_quote(c)}" for c in cols)])
        con.execute(
            f"CREATE VIEW {table} AS SELECT {selected} FROM {RAW}{table} t "
            f"JOIN {PEOPLE} p ON p.pseudonym = t.pseudonym{_where(table, window)}"
        )
        readable.update(records.files(table))
    return ProjectViews(
        allowed={t: {*cols, PATIENT_COLUMN} for t, cols in columns.items()},
        readable=tuple(sorted(readable)),
    )


def _where(table: str, window: dict[str, str]) -> str:
    rule = WINDOW_RULES[table]
    return f" WHERE {rule.format(**window)}" if rule else ""


def _load_everyone(
    con: duckdb.DuckDBPyConnection,
    project_key: bytes,
    project_id: str,
    version: int,
    cache: Path | None,
) -> None:
    """``__everyone``: hub pseudonym → project pseudonym for every person in the store."""
    fingerprint = sha256(b"confide-project-key:" + project_key).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", project_id)[:80]
    path = cache / f"{safe}-{fingerprint}-v{version}.parquet" if cache else None
    if path is not None and path.exists():
        con.execute(f"CREATE TEMP TABLE {EVERYONE} AS SELECT * FROM read_parquet(?)", [str(path)])
        return
    outer, inner = _pads(project_key)
    con.execute(
        f"CREATE TEMP TABLE {EVERYONE} AS "
        "SELECT pseudonym, "
        f"left(sha256(?::BLOB || unhex(sha256(?::BLOB || encode(pseudonym)))), {PSEUDONYM_HEX})"
        f" AS {PATIENT_COLUMN} "
        f"FROM (SELECT DISTINCT pseudonym FROM {RAW}patients WHERE pseudonym IS NOT NULL)",
        [outer, inner],
    )
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    con.execute(f"COPY {EVERYONE} TO '{tmp}' (FORMAT parquet)")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    for old in path.parent.glob(f"{safe}-*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)


def contributor_commitments(
    con: duckdb.DuckDBPyConnection, grant: ProjectGrant, views: Iterable[str], release_id: str
) -> bytes:
    """Sorted unique SHA-256(release_id ":" hub pseudonym) of everyone with rows in ``views``
    (after exclusions), concatenated as raw 32-byte digests."""
    window = {"start": _date(grant.window_start), "end": _date(grant.window_end)}
    names = sorted(set(views))
    if not names:
        return b""
    if "patients" in names:  # the patients view holds everyone the other views can hold
        return _commitments(con, f"SELECT pseudonym FROM {PEOPLE}", release_id)
    union = " UNION ".join(
        f"SELECT t.pseudonym FROM {RAW}{name} t SEMI JOIN {PEOPLE} p "
        f"ON p.pseudonym = t.pseudonym{_where(name, window)}"
        for name in names
    )
    return _commitments(con, union, release_id)


def excluded_commitments(con: duckdb.DuckDBPyConnection, release_id: str) -> bytes:
    """The same commitments for people in the store whom their choices left out."""
    sql = (
        f"SELECT DISTINCT e.pseudonym FROM {EXCLUDED} e "
        f"SEMI JOIN (SELECT pseudonym FROM {RAW}patients) r ON r.pseudonym = e.pseudonym"
    )
    return _commitments(con, sql, release_id)


def _commitments(con: duckdb.DuckDBPyConnection, people_sql: str, release_id: str) -> bytes:
    table = con.sql(
        f"SELECT unhex(sha256(? || ':' || pseudonym)) AS c FROM ({people_sql}) ORDER BY c",
        params=[release_id],
    ).to_arrow_table()
    column = table.column("c").combine_chunks()
    if len(column) == 0:
        return b""
    fixed = column.cast(pa.binary(32))
    data = fixed.buffers()[1]
    return data.to_pybytes()[fixed.offset * 32 : (fixed.offset + len(fixed)) * 32]
