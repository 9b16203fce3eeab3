"""Per-person commitment secrets, kept by the choices party next to its registry.

Each person gets a random 32-byte secret the first time one of their events is logged; the
ledger's commitments (:mod:`confide.ledger.commitments`) are keyed with it. The secrets live in
the choices party's folder, in a small SQLite file of their own::

    <home>/choices/commitment-salts.db    table commitment_salts(person_key, secret, created_at)
    <home>/choices/commitment-salts.key   32 random bytes (owner-only)

Rows are found by ``person_key = HMAC-SHA256(key, NHS number)``, so the database on its own
(a backup, say) maps no NHS number to a secret. Losing either file means old commitments can no
longer be recognised (new ones still work); :meth:`SaltStore.forget` does that on purpose for
one person, leaving their log entries unlinkable to anyone for ever.

It is a separate file rather than a table in the registry's operational store so the registry's
schema (and its migrations) stay the registry's own; moving it into that store is one migration
when the choices party wants it there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    create_engine,
    delete,
    event,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from confide.common import nhs_number as nhs
from confide.common.clock import utcnow
from confide.common.columns import UTC_DATETIME
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.common.secrets import load_or_create
from confide.ledger.commitments import SECRET_SIZE

DB_FILE = "commitment-salts.db"
KEY_FILE = "commitment-salts.key"
_CHUNK = 500

metadata = MetaData()
salts = Table(
    "commitment_salts",
    metadata,
    Column("person_key", LargeBinary(32), primary_key=True),
    Column("secret", LargeBinary(SECRET_SIZE), nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
)


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial wiring
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    metadata.create_all(engine)
    return engine


def _number(raw: str) -> str:
    reason = nhs.why_invalid(raw)
    number = nhs.normalise(raw)
    if reason or number is None:
        raise InvalidInput(f"{reason}.", hint="Check the 10-digit NHS number and enter it again.")
    return number


class SaltStore:
    """The choices party's store of per-person commitment secrets."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._key = load_or_create(folder / KEY_FILE, lambda: secrets.token_bytes(32))
        self.engine = _engine(folder / DB_FILE)

    @classmethod
    def open(cls, home: Home) -> SaltStore:
        return cls(home.party("choices"))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SaltStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _person_key(self, number: str) -> bytes:
        return hmac.new(self._key, number.encode(), hashlib.sha256).digest()

    def secret_for(self, nhs_number: str) -> bytes:
        """The person's secret, made on first use (safe under concurrent first uses)."""
        return self.secrets_for([nhs_number])[nhs.normalise(nhs_number) or ""]

    def secrets_for(self, nhs_numbers: Iterable[str]) -> dict[str, bytes]:
        """Secrets for many people, keyed by normalised NHS number, made where missing."""
        numbers = sorted({_number(n) for n in nhs_numbers})
        keys = {self._person_key(n): n for n in numbers}
        now = utcnow()
        found: dict[str, bytes] = {}
        with self.engine.begin() as conn:
            items = list(keys)
            for i in range(0, len(items), _CHUNK):
                part = items[i : i + _CHUNK]
                conn.execute(
                    sqlite_insert(salts)
                    .values(
                        [
                            {
                                "person_key": k,
                                "secret": secrets.token_bytes(SECRET_SIZE),
                                "created_at": now,
                            }
                            for k in part
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=["person_key"])
                )
                rows = conn.execute(
                    select(salts.c.person_key, salts.c.secret).where(salts.c.person_key.in_(part))
                )
                found.update((keys[k], s) for k, s in rows)
        return found

    def existing(self, nhs_number: str) -> bytes | None:
        """The person's secret if one was ever made (never creates one: a report only reads)."""
        key = self._person_key(_number(nhs_number))
        with self.engine.connect() as conn:
            return conn.execute(
                select(salts.c.secret).where(salts.c.person_key == key)
            ).scalar_one_or_none()

    def forget(self, nhs_number: str) -> bool:
        """Destroy the person's secret: their logged commitments become unlinkable for ever.
        Returns whether there was one."""
        key = self._person_key(_number(nhs_number))
        with self.engine.begin() as conn:
            return conn.execute(delete(salts).where(salts.c.person_key == key)).rowcount > 0
