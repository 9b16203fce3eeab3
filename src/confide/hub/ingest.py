"""Ingesting one submission: authenticate, check, pseudonymise, quarantine, swap in.

Idempotent: a submission already ingested changes nothing. All or nothing: the record store
moves from the source's previous snapshot to the new one in one catalog swap. The original
bytes of a rejected submission are kept with the reason; of an accepted one the hub keeps only
what proves what it received (:mod:`confide.hub.kept`). People the hub has erased are never
stored again (:mod:`confide.hub.erasure`).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from confide.common.clock import utcnow
from confide.common.errors import SubmissionRejected
from confide.common.home import Home
from confide.common.submission import (
    CLINICAL_TABLES,
    read_manifest,
    verify_files,
    verify_signature,
)
from confide.events.types import SubmissionIngested
from confide.hub import erasure, kept, shrink, validate
from confide.hub.erasure import ErasureRegister
from confide.hub.ports import PseudonymService
from confide.hub.records import RecordStore
from confide.hub.store import HubStore
from confide.rollout import gate as rollout_gate
from confide.rollout.model import Point

# The record store's tables whose rows a submission's record count adds up.
RECORD_TABLES = (
    "patients",
    "registrations",
    "events",
    "medications",
    "hospital_episodes",
    "deaths",
)
# The columns each submitted table must carry (by name; types are cast and checked).
SUBMITTED_COLUMNS = {
    "registrations": ("ref", "practice", "start_date", "end_date"),
    "events": ("ref", "kind", "system", "code", "date", "value", "unit"),
    "medications": ("ref", "system", "code", "date", "quantity", "quantity_unit"),
    "episodes": (
        "ref",
        "episode",
        "admission_date",
        "discharge_date",
        "admission_method",
        "diagnoses",
        "procedures",
    ),
    "deaths": ("ref", "date_of_death"),
}
# Columns added since: a submission from an older agent lacks them, read as null.
OPTIONAL_COLUMNS: dict[str, dict[str, pa.DataType]] = {
    "events": {"comparator": pa.string(), "value_system": pa.string(), "value_code": pa.string()},
}


@dataclass
class IngestResult:
    submission_id: str
    source: str
    status: str  # ingested | duplicate
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # Records of earlier submissions linked meanwhile, whose rows were added (``readmit``).
    readmitted: dict[str, int] = field(default_factory=dict)
    # Where every row went (``at_hub``), the practice's accounting (``by_resource``) and an
    # operator's confirmation of a large shrinkage (``shrink_confirmed``).
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "source": self.source,
            "status": self.status,
            **self.counts,
            **self.details,
            "seconds": self.seconds,
            **({"readmitted": self.readmitted} if self.readmitted else {}),
        }


@dataclass(frozen=True)
class Erasure:
    """One erasure at the hub: its id in the register, and the record store's rows removed."""

    erasure_id: str
    rows: int


def _without(tables: dict[str, pa.Table], gone: set[str]) -> dict[str, pa.Table]:
    """The tables without the rows of erased people."""
    if not gone:
        return tables
    value_set = pa.array(sorted(gone), pa.string())
    return {
        name: t.filter(pc.invert(pc.fill_null(pc.is_in(t.column("pseudonym"), value_set), False)))
        for name, t in tables.items()
    }


def _hub_accounts(checked: validate.Checked, people: pa.Table) -> dict[str, dict[str, int]]:
    """Rows per table: accepted into the store, quarantined, or left out by choice."""
    quarantined = checked.quarantine.column("table").to_pylist()
    out: dict[str, dict[str, int]] = {}
    for name in sorted(set(checked.tables) | set(quarantined)):
        accepted = checked.tables[name].num_rows if name in checked.tables else 0
        held = quarantined.count(name)
        out[name] = {k: v for k, v in (("accepted", accepted), ("quarantined", held)) if v}
    objectors = people.column("status").to_pylist().count("objector")
    if objectors:
        out.setdefault("identities", {})["left out by choice"] = objectors
    return {k: v for k, v in out.items() if v}


class Hub:
    """The hub's ingest side: one record store, one operational store, one pseudonym port."""

    def __init__(
        self, home: Home, pseudonymiser: PseudonymService, *, max_shrink: float | None = None
    ) -> None:
        self.home = home
        self.folder = home.party("hub")
        # The largest share of a source's patients or rows one submission may remove without
        # an operator's confirmation (see ``confide.hub.shrink``).
        self.max_shrink = (
            shrink.max_shrink_from_env() if max_shrink is None else shrink.check_share(max_shrink)
        )
        self.records = RecordStore(self.folder / "records")
        self.ops = HubStore(home)
        self.erasures = ErasureRegister(self.ops.engine)
        self.pseudonymiser = pseudonymiser
        self.listeners: list[Callable[[IngestResult], None]] = []

    def close(self) -> None:
        self.ops.close()

    def enrol(self, ods: str, kind: str, verify_key: bytes, name: str | None = None) -> None:
        self.ops.enrol(ods, kind, verify_key, name)

    def erase(self, pseudonyms: list[str]) -> int:
        """Erase these people from every hub store (see :meth:`erase_everywhere`); returns
        the record store's rows removed."""
        return self.erase_everywhere(pseudonyms).rows

    def erase_everywhere(
        self, pseudonyms: list[str], *, also: tuple[str, ...] = (), erasure_id: str | None = None
    ) -> Erasure:
        """Tombstone these people, then remove their rows from the record store and the kept
        submissions, each confirmed as it is done. ``also`` names stores outside the hub that
        must confirm too (:meth:`ErasureRegister.confirm`) before the erasure is complete.

        The tombstone commits first: from then on no ingest or re-admission stores them again,
        whatever the order of events; a crash afterwards leaves the erasure pending, redone by
        :meth:`complete_erasures`."""
        people = sorted(set(pseudonyms))
        if not people and not also:
            return Erasure("", 0)
        eid = self.erasures.request(people, (*erasure.HUB_STORES, *also), erasure_id)
        rows = self._erase_records(set(people))
        self.erasures.confirm(eid, erasure.RECORDS)
        kept.erase(self.folder / "submissions", set(people))
        self.erasures.confirm(eid, erasure.KEPT)
        return Erasure(eid, rows)

    def complete_erasures(self) -> int:
        """Redo the hub's own steps of every pending erasure (after a crash); returns how many
        erasures had a step redone. Each step is idempotent."""
        redone = set()
        for store, step in (
            (erasure.RECORDS, self._erase_records),
            (erasure.KEPT, lambda gone: kept.erase(self.folder / "submissions", gone)),
        ):
            waiting = self.erasures.waiting(store)
            if not waiting:
                continue
            step(self.erasures.pseudonyms_of(waiting))
            for eid in waiting:
                self.erasures.confirm(eid, store)
            redone.update(waiting)
        return len(redone)

    def _erase_records(self, people: set[str]) -> int:
        """Remove every row of these people from every table, in one pass over the store
        (many people at once cost the same single rewrite). Returns rows removed."""
        if not people:
            return 0
        gone = pa.array(sorted(people), pa.string())

        def without(_name: str, table: pa.Table) -> pa.Table:
            keep = pc.invert(pc.is_in(table.column("pseudonym"), value_set=gone))
            return table.filter(keep)

        with self.records.writing():
            return self.records.rewrite(without)

    # -- ingest ---------------------------------------------------------------------------
    def ingest(
        self,
        folder: Path,
        *,
        crash_hook: Callable[[str], None] | None = None,
        confirm_shrink: bool = False,
        max_shrink: float | None = None,
    ):
        """Ingest the submission in ``folder``; raises ``SubmissionRejected`` with a reason.

        ``confirm_shrink``: an operator's explicit yes to a submission that removes more of
        the source's record than ``max_shrink`` allows (refused otherwise); ``max_shrink``
        for this call only (default: the hub's)."""
        folder = Path(folder)
        limit = self.max_shrink if max_shrink is None else shrink.check_share(max_shrink)
        manifest: dict[str, Any] | None = None
        try:
            manifest = read_manifest(folder)
            return self._ingest(folder, manifest, crash_hook, confirm_shrink, limit)
        except SubmissionRejected as exc:
            self._keep_rejected(folder, manifest, exc.message)
            raise

    def _ingest(
        self,
        folder: Path,
        manifest: dict[str, Any],
        crash_hook,
        confirm_shrink: bool = False,
        max_shrink: float | None = None,
    ) -> IngestResult:
        t0 = time.perf_counter()
        submission_id = str(manifest["submission_id"])
        source = manifest.get("source") or {}
        ods = str(source.get("ods", ""))
        enrolled_kind, key = self.ops.source_key(ods)
        verify_signature(manifest, key)
        if source.get("kind") != enrolled_kind:
            raise SubmissionRejected(
                f"Source {ods} is enrolled as a {enrolled_kind} but the submission says "
                f"{source.get('kind')!r}."
            )
        rollout_gate.check(self.home, Point.INGEST, ods, manifest=manifest)  # pauses, waiting
        if submission_id in self.records.catalog()["ingested"]:
            return self._duplicate(submission_id, ods)
        self._refuse_stale(ods, manifest)
        verify_files(folder, manifest)
        timings = {"authenticate": time.perf_counter() - t0}

        t1 = time.perf_counter()
        sealed = [
            (folder / name).read_bytes()
            for name in sorted(manifest["files"])
            if name.startswith("identities-")
        ]
        people = self.pseudonymiser.pseudonymise_submission(ods, submission_id, sealed)
        timings["pseudonymise"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        tables = {name: self.read_table(folder, name) for name in CLINICAL_TABLES}
        checked = validate.check(ods, enrolled_kind, people, tables)
        timings["validate"] = time.perf_counter() - t2

        t3 = time.perf_counter()
        with self.records.writing():
            if submission_id in self.records.catalog()["ingested"]:
                return self._duplicate(submission_id, ods)
            self._refuse_stale(ods, manifest)
            # Read under the write lock: an erasure commits its tombstones before it takes the
            # lock, so either they are seen here or its rewrite runs after this swap.
            gone = self.erasures.erased_among(people.column("pseudonym").drop_null().to_pylist())
            stored = _without(checked.tables, gone)
            counts: dict[str, int] = {name: t.num_rows for name, t in stored.items()}
            counts["quarantined"] = checked.quarantine.num_rows
            statuses = people.column("status").to_pylist()
            counts["unlinked"] = statuses.count("unlinked")
            counts["excluded_by_choice"] = statuses.count("objector")
            counts["excluded_as_erased"] = len(gone)
            counts["submitted_patients"] = people.num_rows
            details: dict[str, Any] = {
                "at_hub": _hub_accounts(checked, people),
                "by_resource": (manifest.get("counts") or {}).get("by_resource") or {},
            }
            for key_name in ("type1_excluded", "type1_withdrawn"):
                counts[key_name] = int((manifest.get("counts") or {}).get(key_name, 0))
            confirmed = shrink.guard(
                ods,
                submission_id,
                shrink.measure(self._live_summary(ods), counts),
                self.max_shrink if max_shrink is None else max_shrink,
                confirm_shrink,
            )
            if confirmed is not None:
                details["shrink_confirmed"] = confirmed
            kept.keep(
                self.folder / "submissions" / submission_id,
                folder,
                people,
                tables,
                checked.quarantine,
                counts,
                gone,
            )
            self.records.replace_source(
                ods,
                submission_id,
                manifest["created_at"],
                stored,
                {"source": ods, "created_at": manifest["created_at"], **counts, **details},
                before_commit=crash_hook,
            )
        timings["store"] = time.perf_counter() - t3
        self.ops.record(
            submission_id,
            source=ods,
            created_at=manifest["created_at"],
            status="ingested",
            summary={**counts, **details},
            events=(self._ingested_event(submission_id, ods, counts),),
        )
        result = IngestResult(
            submission_id,
            ods,
            "ingested",
            counts,
            {k: round(v, 3) for k, v in timings.items()},
            details=details,
        )
        for listener in self.listeners:
            listener(result)
        # This submission may have brought the people earlier records were waiting for.
        result.readmitted = self.readmit()
        return result

    def _duplicate(self, submission_id: str, ods: str) -> IngestResult:
        """A submission seen before changes nothing, but its event is made sure of: a crash
        after the record store's commit and before the outcome was recorded lost neither."""
        summary = self.records.catalog()["ingested"].get(submission_id) or {}
        kept_manifest = self.folder / "submissions" / submission_id / "manifest.json"
        if kept_manifest.exists() and self.ops.announce(
            (self._ingested_event(submission_id, ods, summary),)
        ):
            for listener in self.listeners:
                listener(IngestResult(submission_id, ods, "duplicate"))
        return IngestResult(submission_id, ods, "duplicate")

    def _ingested_event(
        self, submission_id: str, ods: str, counts: dict[str, Any]
    ) -> SubmissionIngested:
        """What other parties (the ledger) hear of an ingest: counts and the digest of the
        manifest kept, which names nobody."""
        manifest = self.folder / "submissions" / submission_id / "manifest.json"
        return SubmissionIngested(
            f"submission:{submission_id}",
            submission_id,
            ods,
            hashlib.sha256(manifest.read_bytes()).hexdigest(),
            sum(int(counts.get(table, 0)) for table in RECORD_TABLES),
            int(counts.get("quarantined", 0)),
        )

    def readmit(self) -> dict[str, int]:
        """Add the rows of records the pseudonymiser has linked since their submission."""
        from confide.hub.readmit import readmit

        return readmit(self)

    def _live_summary(self, ods: str) -> dict[str, Any] | None:
        """The counts of the source's live snapshot (None before its first submission)."""
        catalog = self.records.catalog()
        live = catalog["sources"].get(ods)
        if not live:
            return None
        return catalog["ingested"].get(live["submission_id"])

    def _refuse_stale(self, ods: str, manifest: dict[str, Any]) -> None:
        current = self.records.catalog()["sources"].get(ods)
        if current and str(current["created_at"]) >= str(manifest["created_at"]):
            raise SubmissionRejected(
                f"This submission from {ods} is not newer than the data already held from it "
                "(it may be a replay of an old upload).",
                hint="Send a fresh extract; older submissions are never applied over newer ones.",
            )

    def read_table(self, folder: Path, name: str) -> pa.Table:
        path = folder / f"{name}.parquet"
        optional = OPTIONAL_COLUMNS.get(name, {})
        if not path.exists():
            return pa.table(
                {c: pa.array([], pa.null()) for c in (*SUBMITTED_COLUMNS[name], *optional)}
            )
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError):
            raise SubmissionRejected(f"{name}.parquet cannot be read as Parquet.") from None
        missing = [c for c in SUBMITTED_COLUMNS[name] if c not in table.column_names]
        if missing:
            raise SubmissionRejected(
                f"{name}.parquet lacks the column(s) {', '.join(missing)}.",
                hint="The practice agent that made it may be out of date; update it.",
            )
        for column, kind in optional.items():
            if column not in table.column_names:
                table = table.append_column(column, pa.nulls(table.num_rows, kind))
        return table.select([*SUBMITTED_COLUMNS[name], *optional])

    def _keep_rejected(self, folder: Path, manifest: dict[str, Any] | None, reason: str) -> None:
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        sid = str((manifest or {}).get("submission_id") or folder.name)[:80]
        target = self.folder / "rejected" / f"{stamp}-{sid}"
        target.mkdir(parents=True, exist_ok=True)
        if folder.is_dir():
            shutil.copytree(folder, target / "original")
        elif folder.exists():
            shutil.copy2(folder, target / "original")
        (target / "reason.json").write_bytes(
            orjson.dumps({"reason": reason, "received_at": stamp}, option=orjson.OPT_INDENT_2)
        )
        source = ((manifest or {}).get("source") or {}).get("ods")
        self.ops.record(
            f"{sid[:50]}#rejected-{stamp}",
            source=str(source)[:8] if source else None,
            created_at=str((manifest or {}).get("created_at"))[:40] if manifest else None,
            status="rejected",
            reason=reason,
        )
