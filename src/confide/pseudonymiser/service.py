"""The pseudonymiser's public interface, used in-process by the embedded default.

``pseudonymise_submission`` is the one call the hub makes: sealed identity batches in, a table
of ``ref → pseudonym`` with coarse demographics out. Type 1 objections found in the batches go
to ``type1_listeners`` (the choices registry), never to the hub.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from confide.common.home import Home
from confide.common.sealing import IDENTITY_SCHEMA, open_table
from confide.pseudonymiser import demographics, keys
from confide.pseudonymiser.index import PersonIndex
from confide.pseudonymiser.linkage import DeterministicLinker, Linker

# What the hub receives for each identity row of a submission.
PSEUDONYMISED_SCHEMA = pa.schema(
    [
        ("ref", pa.int32()),
        ("pseudonym", pa.string()),
        ("birth_year", pa.int16()),
        ("birth_month", pa.int8()),
        ("sex", pa.string()),
        ("area", pa.string()),
        ("status", pa.string()),  # linked | unlinked | objector
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class Type1Change:
    """A type 1 objection (or its withdrawal) recorded at a practice."""

    nhs_number: str
    dissent: bool
    at: date | None
    source: str


def public_key(home: Home) -> bytes:
    """The public key practices seal identifiers to (safe to publish)."""
    return keys.box_public_key(home.party("pseudonymiser"))


class Pseudonymiser:
    def __init__(self, home: Home, linker: Linker | None = None) -> None:
        self._folder = home.party("pseudonymiser")
        self._index = PersonIndex(self._folder / "index.duckdb")
        self._index.con.execute(
            "CREATE TABLE IF NOT EXISTS pending_linkage ("
            " source VARCHAR, submission_id VARCHAR, ref INTEGER, nhs_number VARCHAR,"
            " birth_date VARCHAR, postcode VARCHAR, sex VARCHAR, reason VARCHAR,"
            " received_at TIMESTAMP, PRIMARY KEY (submission_id, ref))"
        )
        # The index is one DuckDB connection: one caller at a time (ingests may run in threads).
        # Re-entrant: type 1 codes announced mid-pseudonymisation can lead back here (erasure).
        self._lock = threading.RLock()
        self._linker = linker or DeterministicLinker()
        self.type1_listeners: list[Callable[[list[Type1Change]], None]] = []
        # Who has chosen to share nothing (the choices registry, in the embedded wiring):
        # given valid NHS numbers, a boolean per number. Their rows never reach the hub.
        self.shares_nothing: Callable[[list[str]], list[bool]] | None = None

    @classmethod
    def open(cls, home: Home) -> Pseudonymiser:
        return cls(home)

    def close(self) -> None:
        self._index.close()

    def public_key(self) -> bytes:
        return keys.box_public_key(self._folder)

    def rotate_key(self) -> int:
        """Start a new HMAC key version; returns it. Linkage of earlier people is kept."""
        return keys.rotate(self._folder).current

    def pseudonyms_for(self, nhs_numbers: list[str]) -> list[str | None]:
        """Pseudonyms of people already known (None for unknown or invalid numbers)."""
        cleaned, valid = demographics.normalised_numbers(pa.array(nhs_numbers, pa.string()))
        values = cleaned.to_pylist()
        known = [values[i] for i in np.flatnonzero(valid)]
        with self._lock:
            found = self._index.pseudonyms(known, keys.load_ring(self._folder), create=False)
        out: list[str | None] = [None] * len(nhs_numbers)
        for i, p in zip(np.flatnonzero(valid), found, strict=True):
            out[int(i)] = p
        return out

    def pseudonymise_submission(
        self, source: str, submission_id: str, sealed: Iterable[bytes]
    ) -> pa.Table:
        """Open every batch and return one ``PSEUDONYMISED_SCHEMA`` row per identity row."""
        private = keys.box_private_key(self._folder)
        batches = [open_table(blob, private) for blob in sealed]
        identities = (
            pa.concat_tables([b.cast(IDENTITY_SCHEMA) for b in batches])
            if batches
            else IDENTITY_SCHEMA.empty_table()
        )
        with self._lock:
            return self._pseudonymise(source, submission_id, identities)

    def _pseudonymise(self, source: str, submission_id: str, ids: pa.Table) -> pa.Table:
        cleaned, valid = demographics.normalised_numbers(ids.column("nhs_number"))
        linkable = self._linker.link(ids, valid)
        objector = np.array(
            pc.fill_null(pc.equal(ids.column("type1"), "dissent"), False).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        numbers = cleaned.to_pylist()
        self._announce_type1(source, ids, cleaned, valid)
        if self.shares_nothing is not None and valid.any():
            positions = np.flatnonzero(valid)
            chosen = np.asarray(self.shares_nothing([numbers[i] for i in positions]), dtype=bool)
            objector[positions[chosen]] = True
        linkable = linkable & ~objector
        rows = np.flatnonzero(linkable)
        found = self._index.pseudonyms(
            [numbers[i] for i in rows], keys.load_ring(self._folder), create=True
        )
        pseudonym: list[str | None] = [None] * ids.num_rows
        for i, p in zip(rows, found, strict=True):
            pseudonym[int(i)] = p

        reason = demographics.reasons(ids.column("nhs_number"), valid)
        status = np.where(objector, "objector", np.where(linkable, "linked", "unlinked"))
        year, month = demographics.birth_year_month(ids.column("birth_date"))
        result = pa.table(
            {
                "ref": ids.column("ref"),
                "pseudonym": pa.array(pseudonym, pa.string()),
                "birth_year": year,
                "birth_month": month,
                "sex": demographics.sexes(ids.column("sex")),
                "area": demographics.districts(ids.column("postcode")),
                "status": pa.array(status.tolist(), pa.string()),
                "reason": pa.array(reason, pa.string()),
            },
            schema=PSEUDONYMISED_SCHEMA,
        )
        self._hold_unlinked(source, submission_id, ids, linkable | objector, reason)
        return result

    def _hold_unlinked(
        self,
        source: str,
        submission_id: str,
        ids: pa.Table,
        linkable: np.ndarray,
        reason: list[str | None],
    ) -> None:
        waiting = np.flatnonzero(~linkable)
        if len(waiting) == 0:
            return
        held = ids.take(pa.array(waiting)).select(
            ["ref", "nhs_number", "birth_date", "postcode", "sex"]
        )
        held = held.append_column("reason", pa.array([reason[i] for i in waiting], pa.string()))
        con = self._index.con
        con.register("held", held)
        try:
            con.execute(
                "INSERT OR IGNORE INTO pending_linkage SELECT ?, ?, ref, nhs_number, birth_date,"
                " postcode, sex, reason, ? FROM held",
                [source, submission_id, datetime.now(UTC).replace(tzinfo=None)],
            )
        finally:
            con.unregister("held")

    def pending_linkage_count(self) -> int:
        return self._index.con.execute("SELECT count(*) FROM pending_linkage").fetchone()[0]

    def _announce_type1(
        self, source: str, ids: pa.Table, cleaned: pa.Array, valid: np.ndarray
    ) -> None:
        states = ids.column("type1").to_pylist()
        dates = ids.column("type1_date").to_pylist()
        numbers = cleaned.to_pylist()
        changes = [
            Type1Change(numbers[i], states[i] == "dissent", dates[i], source)
            for i in range(ids.num_rows)
            if states[i] in ("dissent", "withdrawn") and valid[i]
        ]
        if changes:
            for listener in self.type1_listeners:
                listener(changes)
