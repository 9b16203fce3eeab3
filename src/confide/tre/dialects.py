"""The SQL the project view builders share, written once, and each engine's differences.

Both view builders (:mod:`confide.tre.views` on DuckDB, :mod:`confide.tre.spark_views` on
Spark) need the same per-person SQL: one ``patients`` row per person (the GP practice's record
first), each person's project pseudonym and record-key HMAC, the hidden record keys derived
from it, and the approved date window of each table. :class:`Dialect` writes that SQL once, in
DuckDB's dialect (the one every record-store query is written in), and :meth:`Dialect.render`
writes it in the engine's own dialect with SQLGlot. A subclass per engine overrides only what
SQLGlot cannot translate: today, reading a hexadecimal string as a number.

The HMAC is HMAC-SHA256 built from SHA-256 (RFC 2104: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))), so
the key never appears in SQL text: the caller passes its pads (:func:`hmac_pads`) as bound
parameters or as columns of a one-row table, and names them in the expression.
"""

from __future__ import annotations

from datetime import date
from hashlib import sha256
from typing import ClassVar

import sqlglot

from confide.hub.records import RECORD_SCHEMAS
from confide.tre.cellkey import BUCKET_COLUMNS, BUCKETS_PER_HASH

WRITTEN_IN = "duckdb"  # the dialect the shared SQL below is written in
PSEUDONYM_HEX = 32  # a project pseudonym: the first 128 bits of the HMAC, in hex

# table → how its rows meet the window [start, end] (None: not restricted by date).
WINDOW_RULES: dict[str, str | None] = {
    "patients": None,
    "registrations": "t.start_date <= {end} AND (t.end_date IS NULL OR t.end_date >= {start})",
    "events": "t.date BETWEEN {start} AND {end}",
    "medications": "t.date BETWEEN {start} AND {end}",
    "hospital_episodes": "t.admission_date BETWEEN {start} AND {end}",
    "deaths": "t.date_of_death BETWEEN {start} AND {end}",
}


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The outer and inner HMAC-SHA256 pads of ``key`` (RFC 2104)."""
    if len(key) > 64:
        key = sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x5C for b in key), bytes(b ^ 0x36 for b in key)


def quote(name: str) -> str:
    """A column name as a quoted identifier (in the shared dialect)."""
    return '"' + name.replace('"', '""') + '"'


def date_literal(value: date) -> str:
    """A date as an SQL literal (in the shared dialect)."""
    return f"DATE '{date.fromisoformat(str(value)).isoformat()}'"


def window_literals(start: date, end: date) -> dict[str, str]:
    """The approved window's bounds as SQL literals, for :func:`window_filter`."""
    return {"start": date_literal(start), "end": date_literal(end)}


def window_filter(table: str, window: dict[str, str]) -> str:
    """`` WHERE`` and the rule keeping ``table``'s rows (alias ``t``) inside ``window``, or
    nothing when the table is not restricted by date."""
    rule = WINDOW_RULES[table]
    return f" WHERE {rule.format(**window)}" if rule else ""


class Dialect:
    """The shared SQL of the view builders, rendered in one engine's dialect.

    Every method returns SQL in the engine's own dialect, except those documented as returning
    shared-dialect text for embedding in a larger statement (render that statement once)."""

    name: ClassVar[str]

    def render(self, sql: str) -> str:
        """Shared-dialect SQL (a statement or one select item) in this engine's dialect."""
        if self.name == WRITTEN_IN:
            return sql
        return sqlglot.parse_one(sql, read=WRITTEN_IN).sql(dialect=self.name)

    # --- what differs between engines (shared-dialect text) --------------------------------

    def hex_number(self, hex_text: str) -> str:
        """A hexadecimal string (at most 15 digits) as a BIGINT."""
        return f"CAST('0x' || {hex_text} AS BIGINT)"

    # --- written once -----------------------------------------------------------------------

    @staticmethod
    def hmac_hex(outer_pad: str, inner_pad: str, message: str) -> str:
        """Shared-dialect HMAC-SHA256 of the text ``message`` in hex, from the key's pads."""
        return f"sha256({outer_pad} || unhex(sha256({inner_pad} || encode({message}))))"

    @classmethod
    def pseudonym_hex(cls, outer_pad: str, inner_pad: str, message: str) -> str:
        """Shared-dialect project pseudonym of ``message``: the HMAC's first 128 bits, hex."""
        return f"left({cls.hmac_hex(outer_pad, inner_pad, message)}, {PSEUDONYM_HEX})"

    def patients(self, sources: str) -> str:
        """One row per person from the per-source demographics in ``sources`` (each source
        sends its own): the GP practice's record first, then by source."""
        columns = ", ".join(RECORD_SCHEMAS["patients"].names)
        return self.render(
            f"SELECT {columns} FROM ("
            "SELECT *, row_number() OVER (PARTITION BY pseudonym "
            "ORDER BY source_kind = 'practice' DESC, source) AS choice "
            f"FROM {sources} WHERE pseudonym IS NOT NULL) AS ranked WHERE choice = 1"
        )

    def record_keys(self, hmac_hex: str) -> list[str]:
        """The select items of a person's hidden keys (``__rkey``, ``__sid``, ``__chk`` and
        the bucket columns) from the column ``hmac_hex`` holding their record-key HMAC in hex
        (the reference computation is :func:`confide.tre.cellkey.record_keys`)."""
        sid = self.hex_number(f"substr({hmac_hex}, 1, 15)")
        check = self.hex_number(f"substr(sha256(CAST({sid} AS VARCHAR)), 1, 15)")
        per_hash = BUCKETS_PER_HASH
        items = [
            f"{self.hex_number(f'substr({hmac_hex}, 16, 8)')} AS __rkey",
            f"{sid} AS __sid",
            f"{check} AS __chk",
            *(
                f"{i * per_hash} + ({sid} // {16**i}) % {per_hash} AS {column}"
                for i, column in enumerate(BUCKET_COLUMNS)
            ),
        ]
        return [self.render(item) for item in items]


class DuckDBDialect(Dialect):
    """DuckDB: the shared SQL as written."""

    name = "duckdb"


class SparkDialect(Dialect):
    """Spark SQL: the shared SQL transpiled; hexadecimal read with ``conv``."""

    name = "spark"

    def hex_number(self, hex_text: str) -> str:
        return f"CAST(conv({hex_text}, 16, 10) AS BIGINT)"


DUCKDB = DuckDBDialect()
SPARK = SparkDialect()
