"""The embedded deployment: every party in one process, wired through public interfaces only.

This is the one place that composes parties; the parties themselves never import each other's
internals. A networked deployment replaces these constructors with clients of the same
interfaces. The wiring:

- practice submissions' type 1 codes → choices registry (GP channel), through the pseudonymiser,
  which alone sees NHS numbers; the registry tells the pseudonymiser who shares nothing, so no
  source's rows for them reach the hub;
- choice changes to ``share_nothing`` → erasure at the hub (pseudonyms from the pseudonymiser),
  once per batch of changes, recorded in the ledger;
- hub ingests and project decisions → ledger entries;
- the ledger's checkpoints → the witnesses it lists, for their cosignatures.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from confide.access.service import Access
from confide.choices.model import Choice, ChoiceEvent
from confide.choices.registry import ChoicesRegistry
from confide.common.home import Home
from confide.hub.erasure import HUB_STORES, RELEASES, TRE_CACHE
from confide.hub.ingest import Hub, IngestResult
from confide.ledger.log import Ledger
from confide.ledger.witnessing import Witnessing
from confide.pseudonymiser import Pseudonymiser
from confide.tre.membership_erasure import forget
from confide.tre.review import ReviewQueue
from confide.tre.service import QueryService
from confide.tre.store import TreStore
from confide.tre.wiring import query_service, review_queue
from confide.usage.choices import erasure_body, log_choice_events
from confide.usage.report import membership_digest, release_salt
from confide.usage.salts import SaltStore

# Stores outside the hub that must confirm an erasure before it is complete.
TRE_STORES = (TRE_CACHE, RELEASES)


@contextlib.contextmanager
def embedded_tre(home: Home, *, engine: str = "duckdb") -> Iterator[Installation]:
    """Every party, wired, for one TRE command (``.service``, ``.review``, ``.access``);
    ``engine`` runs researchers' queries (duckdb, or spark for stores beyond one machine)."""
    with Installation.open(home, engine=engine) as parties:
        yield parties


def open_hub(home: Home) -> Hub:
    """The hub wired to the in-process pseudonymiser (for commands that need nothing else)."""
    return Hub(home, Pseudonymiser.open(home))


def close_hub(hub: Hub) -> None:
    hub.close()
    close = getattr(hub.pseudonymiser, "close", None)
    if close is not None:
        close()


def witnessed(home: Home, ledger: Ledger) -> Ledger:
    """The ledger, asking the witnesses it lists to cosign every checkpoint it signs: served
    witnesses over HTTP, those with a folder in this home in-process."""
    from confide.witness.local import LocalWitness

    ledger.witnessing = Witnessing.configured(ledger, home.root, local=LocalWitness.open)
    return ledger


def _submission_entry(result: IngestResult, manifest_digest: str) -> dict[str, Any]:
    counts = result.counts
    records = sum(
        int(counts.get(t, 0))
        for t in (
            "patients",
            "registrations",
            "events",
            "medications",
            "hospital_episodes",
            "deaths",
        )
    )
    return {
        "submission_id": result.submission_id,
        "source": result.source,
        "digest": manifest_digest,
        "records": records,
        "quarantined": int(counts.get("quarantined", 0)),
    }


# Access's project events → ledger entries (kinds the ledger's schema v1 knows).
def _access_entry(kind: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    project = {"project_id": body.get("project", "")}
    if kind == "project_applied":
        return kind, {
            **project,
            "organisation": body["organisation_name"],
            "title": body["title"],
            "purpose": body["purpose"],
            "recipient_kind": body["recipient_kind"],
            "legal_basis": body["legal_basis"],
            "datasets": sorted(body.get("datasets", {})),
        }
    if kind == "project_approved":
        return kind, {
            **project,
            "approved_by": body.get("actor_role", "approver"),
            "expires": body["expires_on"],
        }
    if kind in ("project_rejected", "project_refused", "project_suspended"):
        reason = body.get("reason") or kind.replace("_", " ")
        return "refusal", {
            **project,
            "subject": "project",
            "ref": project["project_id"] or "-",
            "reason": str(reason),
        }
    return None


@dataclass
class Installation:
    """All parties of one home, wired together."""

    home: Home
    pseudonymiser: Pseudonymiser
    hub: Hub
    choices: ChoicesRegistry
    ledger: Ledger
    access: Access
    salts: SaltStore
    tre_store: TreStore
    service: QueryService
    review: ReviewQueue
    erasures: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, home: Home, *, engine: str = "duckdb") -> Installation:
        pseudonymiser = Pseudonymiser.open(home)
        hub = Hub(home, pseudonymiser)
        choices = ChoicesRegistry.open(home)
        ledger = witnessed(home, Ledger.open(home))
        access = Access.open(home)
        salts = SaltStore.open(home)
        tre_store = TreStore.open(home)
        service = query_service(
            home,
            access=access,
            registry=choices,
            pseudonymiser=pseudonymiser,
            records=hub.records,
            ledger=ledger,
            store=tre_store,
            engine=engine,
        )
        parts = cls(
            home,
            pseudonymiser,
            hub,
            choices,
            ledger,
            access,
            salts,
            tre_store,
            service,
            review_queue(service),
        )
        parts._wire()
        parts.complete_erasures()
        return parts

    def _wire(self) -> None:
        self.pseudonymiser.type1_listeners.append(self.choices.apply_gp_codes)
        self.pseudonymiser.shares_nothing = self.choices.shares_nothing
        self.choices.batch_listeners.append(self._log_choices)
        self.choices.batch_listeners.append(self._erase_those_who_share_nothing)
        self.hub.listeners.append(self._log_submission)
        self.access.listeners.append(self._log_access)

    def close(self) -> None:
        self.service.close()
        self.tre_store.close()
        self.salts.close()
        self.access.close()
        self.ledger.close()
        self.choices.close()
        self.hub.close()
        self.pseudonymiser.close()

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wiring ----------------------------------------------------------------------------
    def _log_submission(self, result: IngestResult) -> None:
        manifest = self.hub.folder / "submissions" / result.submission_id / "manifest.json"
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
        self.ledger.append("submission_ingested", _submission_entry(result, digest))

    def _log_access(self, kind: str, body: dict[str, Any]) -> None:
        entry = _access_entry(kind, body)
        if entry is not None:
            self.ledger.append(*entry)

    def _log_choices(self, events: Sequence[ChoiceEvent]) -> None:
        """Every change into the ledger as a commitment only the person can recognise."""
        log_choice_events(events, self.ledger, self.salts)

    def _erase_those_who_share_nothing(self, events: Sequence[ChoiceEvent]) -> None:
        """One erasure for every person in the batch who now shares nothing: tombstoned at the
        hub first, then every store, each confirming to the hub's erasure register."""
        leavers = [e for e in events if e.changes.get(Choice.SHARE_NOTHING) is True]
        leaving = sorted({e.nhs_number for e in leavers})
        if not leaving:
            return
        # Minted for people not seen yet, so the tombstone also stops a later first upload.
        pseudonyms = [p for p in self.pseudonymiser.pseudonyms_to_erase(leaving) if p is not None]
        done = self.hub.erase_everywhere(pseudonyms, also=TRE_STORES)
        rows = done.rows
        secrets = self.salts.secrets_for([e.nhs_number for e in leavers])
        stores = [*HUB_STORES, *TRE_STORES]
        indices = self.ledger.append_many(
            [("erasure", erasure_body(secrets[e.nhs_number], e.change_id, stores)) for e in leavers]
        )
        notices = self._deletion_notices(pseudonyms, indices[0] if indices else None) if rows else 0
        self._erase_from_tre(done.erasure_id, pseudonyms, derived=bool(rows))
        self.erasures.append({"people": len(leaving), "rows": rows, "notices": notices})

    def _erase_from_tre(self, erasure_id: str, pseudonyms: list[str], *, derived: bool) -> None:
        """The TRE's stores: cohorts derived from the record store, and release membership
        files (after the deletion notices that needed them); each confirmed to the hub."""
        if derived:
            self.tre_store.drop_cache()  # cohorts derived from the store before the erasure
        self.hub.erasures.confirm(erasure_id, TRE_CACHE)
        forget([self.tre_store.releases, self.tre_store.pending], pseudonyms)
        self.hub.erasures.confirm(erasure_id, RELEASES)

    def complete_erasures(self) -> int:
        """Finish every erasure a crash left pending (the hub's steps, then the TRE's)."""
        redone = self.hub.complete_erasures()
        waiting = sorted(
            set(self.hub.erasures.waiting(TRE_CACHE)) | set(self.hub.erasures.waiting(RELEASES))
        )
        for erasure_id in waiting:
            people = sorted(self.hub.erasures.pseudonyms_of([erasure_id]))
            self._erase_from_tre(erasure_id, people, derived=True)
        return redone + len(waiting)

    def _deletion_notices(self, pseudonyms: list[str], erasure_index: int | None) -> int:
        """Tell the recipients of earlier releases that included any of these people: one
        ``deletion_notice`` per project, naming its releases (never the people)."""
        folder = self.tre_store.releases
        if not any(folder.glob("*.contributors")):
            return 0
        releases = [
            e for e in self.ledger.decoded(0, self.ledger.head().size) if e.kind == "release"
        ]
        affected: dict[str, dict[str, Any]] = {}
        for entry in releases:
            release_id = entry.body["release_id"]
            path = folder / f"{release_id}.contributors"
            if not path.exists():
                continue
            salt_file = folder / f"{release_id}.salt"
            salt = release_salt(release_id, salt_file.read_bytes() if salt_file.exists() else None)
            if salt is None:
                continue
            data = path.read_bytes()
            members = {data[i : i + 32] for i in range(0, len(data), 32)}
            marks = {membership_digest(salt, p) for p in pseudonyms}
            if members & marks:
                notice = affected.setdefault(
                    entry.body["project_id"],
                    {"organisation": entry.body["organisation"], "release_ids": []},
                )
                notice["release_ids"].append(release_id)
        bodies = [
            (
                "deletion_notice",
                {
                    "notice_id": uuid.uuid4().hex,
                    "project_id": project,
                    "organisation": item["organisation"],
                    "release_ids": sorted(item["release_ids"]),
                    **({"erasure_index": erasure_index} if erasure_index is not None else {}),
                },
            )
            for project, item in sorted(affected.items())
        ]
        if bodies:
            self.ledger.append_many(bodies)
        return len(bodies)
