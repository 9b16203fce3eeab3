"""The pseudonymiser's public interface, used in-process by the embedded default.

``pseudonymise_submission`` is the one call the hub makes: sealed identity batches in, a table
of ``ref → pseudonym`` with coarse demographics (and, for probabilistic links, the match weight)
out; ``resolutions`` gives the hub records linked later. Type 1 objections found in the batches
go to ``type1_listeners`` (the choices registry), never to the hub. Linkage beyond the NHS
number lives in ``confide.pseudonymiser.linkage``.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from confide.common.home import Home
from confide.common.sealing import IDENTITY_SCHEMA, open_table
from confide.pseudonymiser import demographics, keys
from confide.pseudonymiser.index import PersonIndex
from confide.pseudonymiser.linkage.incremental import Linkage

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
        ("match_weight", pa.float64()),  # probabilistic links only (log2 odds)
        ("linked_by", pa.string()),  # nhs_number | probabilistic | later_record | review
    ]
)
# Records linked after their submission: which submission, and an increasing sequence number.
RESOLUTION_SCHEMA = pa.schema(
    [("seq", pa.int64()), ("source", pa.string()), ("submission_id", pa.string()),
     *PSEUDONYMISED_SCHEMA]
)  # fmt: skip


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


# The ports the pseudonymiser needs from the choices registry (required: there is no default).
SharesNothing = Callable[[list[str]], list[bool]]
Type1Sink = Callable[[list[Type1Change]], object]


class Pseudonymiser:
    """Opens sealed identities and keys people; asks the choices registry who shares nothing
    (``shares_nothing``) and tells it every type 1 code it sees (``on_type1``). Both ports are
    required: a pseudonymiser that could not ask would let everyone's rows through."""

    def __init__(self, home: Home, *, shares_nothing: SharesNothing, on_type1: Type1Sink) -> None:
        if shares_nothing is None or on_type1 is None:
            raise TypeError("the pseudonymiser needs the choices registry's two ports")
        self._folder = home.party("pseudonymiser")
        # The index (and linkage's tables beside it) is one DuckDB file, which one process at a
        # time may open. It is held only while calls work on it (:meth:`_working`), under a
        # lock file, so a CLI command and a running server take turns instead of failing.
        self._index: PersonIndex | None = None
        self._depth = 0
        self._lock_file: IO[str] | None = None
        self._opened_at = 0.0
        self._idle_timer: threading.Timer | None = None
        # Probabilistic linkage, on the index's database (pending records live there too).
        self.linkage = Linkage(None, self._folder, shares_nothing=self._shares_nothing)
        # One caller at a time in this process (ingests may run in threads). Re-entrant: type 1
        # codes announced mid-pseudonymisation can lead back here (erasure).
        self._lock = threading.RLock()
        self.type1_listeners: list[Type1Sink] = [on_type1]
        # Who has chosen to share nothing: given valid NHS numbers, a boolean per number.
        # Their rows never reach the hub.
        self.shares_nothing: SharesNothing = shares_nothing
        with self._working():  # create the tables now: a broken store fails here, not later
            pass

    def _shares_nothing(self, numbers: list[str]) -> list[bool]:
        return list(self.shares_nothing(numbers))

    @classmethod
    def open(
        cls, home: Home, *, shares_nothing: SharesNothing, on_type1: Type1Sink
    ) -> Pseudonymiser:
        return cls(home, shares_nothing=shares_nothing, on_type1=on_type1)

    def close(self) -> None:
        with self._lock:
            self._release()

    # Opening the index costs a DuckDB open (its key index is read in): a busy process keeps
    # it between calls, for at most HOLD seconds at a stretch, and lets it go after IDLE
    # seconds without a call, so another process waits at most about HOLD for its turn.
    HOLD = 1.0
    IDLE = 0.2

    @contextlib.contextmanager
    def _working(self) -> Iterator[PersonIndex]:
        """The open index for the length of a call (re-entrant). The first call takes the lock
        file, opens the database and binds linkage to it; it is given up soon after the last
        call (:data:`IDLE`), or at the end of a call once held for :data:`HOLD`."""
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if self._index is None:
                handle = (self._folder / ".index.lock").open("a")
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    self._index = PersonIndex(self._folder / "index.duckdb")
                    self.linkage.bind(self._index.con)
                except BaseException:
                    self._index = None
                    fcntl.flock(handle, fcntl.LOCK_UN)
                    handle.close()
                    raise
                self._lock_file = handle
                self._opened_at = time.monotonic()
            self._depth += 1
            try:
                yield self._index
            finally:
                self._depth -= 1
                if self._depth == 0:
                    if time.monotonic() - self._opened_at >= self.HOLD:
                        self._release()
                    else:
                        self._idle_timer = threading.Timer(self.IDLE, self._release_if_idle)
                        self._idle_timer.daemon = True
                        self._idle_timer.start()

    def _release_if_idle(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._release()

    def _release(self) -> None:
        """Close the index and give up the lock file (call holding ``_lock``, outside a call)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def public_key(self) -> bytes:
        return keys.box_public_key(self._folder)

    def rotate_key(self) -> int:
        """Start a new HMAC key version; returns it. Linkage of earlier people is kept."""
        return keys.rotate(self._folder).current

    def pseudonyms_for(self, nhs_numbers: list[str]) -> list[str | None]:
        """Pseudonyms of people already known (None for unknown or invalid numbers)."""
        return self._pseudonyms(nhs_numbers, create=False)

    def pseudonyms_to_erase(self, nhs_numbers: list[str]) -> list[str | None]:
        """Pseudonyms for an erasure, minted for people not seen yet (None for invalid
        numbers): the hub's tombstone then stops their rows whenever they first arrive,
        even through a path that never asks who shares nothing."""
        return self._pseudonyms(nhs_numbers, create=True)

    def _pseudonyms(self, nhs_numbers: list[str], *, create: bool) -> list[str | None]:
        """One pseudonym per NHS number, in order: None for an invalid number, and for an
        unknown person unless ``create`` mints one."""
        cleaned, valid = demographics.normalised_numbers(pa.array(nhs_numbers, pa.string()))
        values = cleaned.to_pylist()
        valid_at = np.flatnonzero(valid)
        with self._working() as index:
            found = index.pseudonyms(
                [values[i] for i in valid_at], keys.load_ring(self._folder), create=create
            )
        out: list[str | None] = [None] * len(nhs_numbers)
        for position, pseudonym in zip(valid_at, found, strict=True):
            out[int(position)] = pseudonym
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
        with self._working():
            return self._pseudonymise(source, submission_id, identities)

    def _pseudonymise(self, source: str, submission_id: str, ids: pa.Table) -> pa.Table:
        cleaned, valid = demographics.normalised_numbers(ids.column("nhs_number"))
        linkable = valid.copy()
        objector = np.array(
            pc.fill_null(pc.equal(ids.column("type1"), "dissent"), False).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        numbers = cleaned.to_pylist()
        self._announce_type1(source, ids, cleaned, valid)
        if valid.any():
            positions = np.flatnonzero(valid)
            chosen = np.asarray(self.shares_nothing([numbers[i] for i in positions]), dtype=bool)
            objector[positions[chosen]] = True
        linkable = linkable & ~objector
        rows = np.flatnonzero(linkable)
        assert self._index is not None  # inside _working()
        found = self._index.pseudonyms(
            [numbers[i] for i in rows], keys.load_ring(self._folder), create=True
        )
        pseudonym: list[str | None] = [None] * ids.num_rows
        for i, p in zip(rows, found, strict=True):
            pseudonym[int(i)] = p

        reason = demographics.reasons(ids.column("nhs_number"), valid)
        linked = self.linkage.link_submission(
            source, submission_id, ids, pseudonym, objector, reason
        )
        status = np.where(
            linked.objector,
            "objector",
            np.where([p is not None for p in linked.pseudonym], "linked", "unlinked"),
        )
        # People who share nothing get no pseudonym in what the hub receives.
        kept = [None if o else p for p, o in zip(linked.pseudonym, linked.objector, strict=True)]
        year, month = demographics.birth_year_month(ids.column("birth_date"))
        return pa.table(
            {
                "ref": ids.column("ref"),
                "pseudonym": pa.array(kept, pa.string()),
                "birth_year": year,
                "birth_month": month,
                "sex": demographics.sexes(ids.column("sex")),
                "area": demographics.districts(ids.column("postcode")),
                "status": pa.array(status.tolist(), pa.string()),
                "reason": pa.array(linked.reason, pa.string()),
                "match_weight": pa.array(linked.match_weight, pa.float64()),
                "linked_by": pa.array(linked.linked_by, pa.string()),
            },
            schema=PSEUDONYMISED_SCHEMA,
        )

    def resolutions(self, after: int = 0) -> pa.Table:
        """Records linked after their submission (by a later record or a reviewer), with a
        sequence number above ``after``: the hub adds their rows. ``status`` is ``objector``
        for anyone who has since chosen to share nothing."""
        with self._working():
            found = self.linkage.pending.resolutions(after)
            choosers = self.linkage.choosers(found.column("pseudonym").to_pylist())
        status = [
            "objector" if p in choosers else "linked" for p in found.column("pseudonym").to_pylist()
        ]
        columns = {name: found.column(name) for name in found.column_names}
        columns["status"] = pa.array(status, pa.string())
        columns["reason"] = pa.nulls(found.num_rows, pa.string())
        return pa.table({f.name: columns[f.name] for f in RESOLUTION_SCHEMA}).cast(
            RESOLUTION_SCHEMA
        )

    def linkage_quality(self) -> list[dict]:
        """Per source: linkage rate and estimated false-match rate (counts only)."""
        with self._working():
            return self.linkage.quality.report()

    def linkage_model(self) -> dict[str, Any] | None:
        """The trained model's facts, match share and levels (m and u); None before one is
        trained."""
        with self._working():
            trained = self.linkage.model()
        if trained is None:
            return None
        return {
            "facts": trained.facts,
            "match_share": trained.match_share,
            "levels": trained.levels(),
        }

    def review_items(self, limit: int = 50) -> list[dict]:
        """The clerical review queue, with identifiers: for the pseudonymiser's reviewers."""
        with self._working():
            return self.linkage.review.items(limit)

    def decide_review(self, item_id: int, match: bool, reviewer: str) -> dict:
        """A reviewer's decision; a match shows up in ``resolutions`` for the hub."""
        with self._working():
            return self.linkage.decide_review(item_id, match, reviewer)

    def pending_linkage_count(self) -> int:
        with self._working():
            return self.linkage.pending.count()

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
