"""The one composition: every party of an installation, built from its home and wired.

Every entry point (CLI command, HTTP route, web page, the demo) gets its parties here and
nowhere else; ``tests/test_composition.py`` fails if one constructs a party itself. Each party is
built on first use, with the ports it needs passed to its constructor (a missing port is an
error, never a default such as "nobody opted out"), so a command that records a choice opens
the choices registry and only what delivering that choice's events needs.

Parties tell each other of their changes through events written to their own outbox in the
transaction of the change (:mod:`confide.events`). The in-process relay here delivers them:
at once after each change, again when the composition closes (the end of every command), and
in the background while ``confide serve`` runs; ``confide relay run`` drains what is left. The
receivers:

- choice changes and type 1 codes seen at a practice → ``choice_changed`` ledger entries (a
  commitment only the person can recognise);
- erasure requests → erasure at the hub (pseudonyms from the pseudonymiser), the TRE's derived
  cohorts dropped, an ``erasure`` ledger entry per person and deletion notices to recipients
  of earlier releases that included them;
- submissions ingested and projects applied for or decided → ledger entries.

Every receiver is idempotent: the ledger appends an event's entry at most once (by event id),
and erasing someone already erased removes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from confide.common import opstore
from confide.common.home import Home
from confide.events.outbox import Outbox
from confide.events.relay import Relay, RelayReport
from confide.events.types import (
    ChoiceChanged,
    ErasureRequested,
    Event,
    ProjectApplied,
    ProjectDecided,
    SubmissionIngested,
    Type1ObjectionSeen,
)
from confide.hub.erasure import RELEASES, TRE_CACHE

if TYPE_CHECKING:
    from confide.access.service import Access
    from confide.choices.identity import IdentityService
    from confide.choices.registry import ChoicesRegistry
    from confide.hub.erasure import ErasureRegister
    from confide.hub.ingest import Hub
    from confide.hub.records import RecordStore
    from confide.ledger.log import Ledger
    from confide.pseudonymiser import Pseudonymiser
    from confide.rollout.service import Rollout
    from confide.services.deployment import Transport
    from confide.tre.review import ReviewQueue
    from confide.tre.service import QueryService
    from confide.tre.store import TreStore
    from confide.usage.salts import SaltStore


# Stores outside the hub that must confirm an erasure before it is complete.
TRE_STORES = (TRE_CACHE, RELEASES)
# The parties with an outbox (each relays its own where it runs as a service).
RELAYING = ("choices", "hub", "access")
# Seconds one "deliver now" asks of a party's service (below the client's timeout).
REMOTE_DRAIN = 20.0
T = TypeVar("T")
_MISSING = object()


class _once(Generic[T]):  # a decorator, like cached_property
    """Like ``functools.cached_property``, but built under the composition's lock: two threads
    (web requests) asking at once never build, open and wire a party twice."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _once[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | _once[T]:
        if obj is None:
            return self
        found = obj.__dict__.get(self.name, _MISSING)
        if found is _MISSING:
            with obj._building:  # type: ignore[attr-defined]  # the owner is any class with a lock
                found = obj.__dict__.get(self.name, _MISSING)
                if found is _MISSING:
                    found = self.build(obj)
                    obj.__dict__[self.name] = found
        return cast(T, found)


def witnessed(home: Home, ledger: Ledger) -> Ledger:
    """The ledger, asking the witnesses it lists to cosign every checkpoint it signs: served
    witnesses over HTTP, those with a folder in this home in-process."""
    from confide.ledger.witnessing import Witnessing
    from confide.witness.local import LocalWitness

    ledger.witnessing = Witnessing.configured(ledger, home.root, local=LocalWitness.open)
    return ledger


class Composition:
    """All parties of one home, each built once on first use and wired to the others."""

    def __init__(
        self,
        home: Home,
        *,
        engine: str = "duckdb",
        transport: Transport | None = None,
    ) -> None:
        self.home = home
        self.engine = engine
        # The parties served elsewhere (``transport.remote``: party → URL) are reached over
        # signed HTTP; the others are built here. None: every party in this process.
        self.transport = transport
        # What each erasure pass did (people, rows, deletion notices), for summaries.
        self.erasures: list[dict[str, Any]] = []
        self._closers: list[Callable[[], None]] = []
        self._building = threading.RLock()
        self._closed = False
        # Set in a service's process: a change wakes its background relay instead of being
        # delivered in the call (a receiver may call back the party that made the call).
        self.wake: threading.Event | None = None

    @classmethod
    def open(cls, home: Home, *, engine: str = "duckdb") -> Composition:
        return cls(home, engine=engine)

    def __enter__(self) -> Composition:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Deliver what the command's changes left pending (failures stay pending, to be
        retried), then close every party opened, last opened first."""
        if self._closed:
            return
        self._closed = True
        try:
            if "relay" in self.__dict__:
                self.relay.deliver()
            self._settle_remote()
        finally:
            for close in reversed(self._closers):
                close()
            self._closers.clear()

    def _opened(self, party: Any, close: Callable[[], None] | None = None) -> Any:
        self._closers.append(close or party.close)
        return party

    def _remote(self, party: str) -> Any:
        """The client of ``party``'s service, or None when the party is built here."""
        if self.transport is None or party not in self.transport.remote:
            return None
        from confide.services.rpc import RemoteParty

        return self._opened(RemoteParty(party, self.transport.remote[party], self.transport.signer))

    def _served_with_hub(self, part: str) -> Any:
        """The client of a part of the TRE served by the hub's service (None: built here)."""
        if not self.is_remote("hub"):
            return None
        from confide.services.rpc import RemoteParty

        assert self.transport is not None
        url, signer = self.transport.remote["hub"], self.transport.signer
        return self._opened(RemoteParty(part, url, signer, namespace=f"{part}."))

    def is_remote(self, party: str) -> bool:
        return self.transport is not None and party in self.transport.remote

    def _settle_remote(self) -> None:
        """As the in-process relay delivers at the end of a command, ask each party served
        elsewhere that this command used to deliver what its changes left pending (what
        fails stays in its outbox, retried by that service)."""
        from confide.common.errors import ConfideError

        for party in RELAYING:
            if party in self.__dict__ and self.is_remote(party):
                with contextlib.suppress(ConfideError):
                    self.__dict__[party].settle()

    def settle(self, timeout: float = 10.0) -> int:
        """Deliver what is due now from this process's outboxes, waiting for a delivery
        another thread has under way; returns how many events are still pending."""
        deadline = time.monotonic() + timeout
        while True:
            self.relay.deliver()
            pending = self.relay.pending()
            if not pending or self.relay.next_due_in() > 0 or time.monotonic() > deadline:
                return pending
            time.sleep(0.05)

    # -- the parties ---------------------------------------------------------------------
    @_once
    def choices(self) -> ChoicesRegistry:
        from confide.choices.registry import ChoicesRegistry

        remote = self._remote("choices")
        if remote is not None:
            return cast("ChoicesRegistry", remote)
        with self._building:
            registry = self._opened(ChoicesRegistry.open(self.home))
            registry.batch_listeners.append(lambda _events: self._changed())
            return cast("ChoicesRegistry", registry)

    @_once
    def pseudonymiser(self) -> Pseudonymiser:
        from confide.pseudonymiser import Pseudonymiser

        remote = self._remote("pseudonymiser")
        if remote is not None:
            return cast("Pseudonymiser", remote)
        with self._building:
            choices = self.choices
            return cast(
                "Pseudonymiser",
                self._opened(
                    Pseudonymiser.open(
                        self.home,
                        shares_nothing=choices.shares_nothing,
                        on_type1=choices.apply_gp_codes,
                    )
                ),
            )

    @_once
    def hub(self) -> Hub:
        from confide.hub.ingest import Hub

        remote = self._remote("hub")
        if remote is not None:
            return cast("Hub", remote)
        with self._building:
            hub = self._opened(Hub(self.home, self.pseudonymiser))
            hub.listeners.append(lambda _result: self._changed())
            self.__dict__["hub"] = hub
            self.complete_erasures()  # a crash may have left one half done: finish it first
            return cast("Hub", hub)

    def erasure_status(self) -> dict[str, Any]:
        """People erased, erasures pending and each pending one's stores still to confirm,
        from the hub's register (asked of the hub's service where it runs as one)."""
        if self.is_remote("hub"):
            return cast("dict[str, Any]", cast(Any, self.hub).erasure_status())
        register = self.erasure_register()
        return {**register.counts(), "pending": register.pending()}

    def erasure_register(self) -> ErasureRegister:
        """The hub's erasure register, for operators (opens the hub's store only)."""
        from confide.hub.erasure import ErasureRegister
        from confide.hub.store import HubStore

        with self._building:
            ops = self.__dict__.get("_hub_ops")
            if ops is None:
                ops = self.__dict__["_hub_ops"] = self._opened(HubStore(self.home))
        return ErasureRegister(ops.engine)

    def records_to_read(self) -> RecordStore | None:
        """The record store for commands that only read it (None for a hub never used: no
        party is opened and nothing is created)."""
        from confide.hub.records import RecordStore

        folder = self.home.root / "hub" / "records"
        return RecordStore(folder) if folder.is_dir() else None

    @_once
    def ledger(self) -> Ledger:
        from confide.ledger.log import Ledger

        remote = self._remote("ledger")
        if remote is not None:
            return cast("Ledger", remote)
        with self._building:
            return cast("Ledger", self._opened(witnessed(self.home, Ledger.open(self.home))))

    def cosign_latest(self) -> dict[str, Any]:
        """Ask every witness to cosign the latest checkpoint now: its size and each witness's
        outcome (asked of the ledger's service where it runs as one)."""
        if self.is_remote("ledger"):
            return cast("dict[str, Any]", cast(Any, self.ledger).cosign_latest())
        ledger = self.ledger
        outcomes = ledger.witnessing.cosign_latest() if ledger.witnessing else {}
        return {"size": ledger.checkpoint().size, "witnesses": outcomes}

    @_once
    def access(self) -> Access:
        from confide.access.service import Access

        remote = self._remote("access")
        if remote is not None:
            return cast("Access", remote)
        with self._building:
            access = self._opened(Access.open(self.home))
            access.listeners.append(lambda _kind, _body: self._changed())
            return cast("Access", access)

    @_once
    def access_store(self) -> Access:
        """The access party's store for staff sign-ins: the access party, or, where it is
        served elsewhere, its store opened here for them alone (not wired)."""
        from confide.access.service import Access

        if not self.is_remote("access"):
            return self.access
        with self._building:
            return cast("Access", self._opened(Access.open(self.home)))

    @_once
    def salts(self) -> SaltStore:
        from confide.usage.salts import SaltStore

        with self._building:
            return cast("SaltStore", self._opened(SaltStore.open(self.home)))

    @_once
    def identity(self) -> IdentityService:
        from confide.choices.identity import IdentityService

        with self._building:
            return IdentityService.open(self.identity_registry, self.home.root)

    @_once
    def identity_registry(self) -> ChoicesRegistry:
        """The registry whose store the identity checks keep their state in: the choices
        registry, or, where it is served elsewhere, its store opened here for them alone
        (not wired: changes of choices still go through the choices service)."""
        from confide.choices.registry import ChoicesRegistry

        if not self.is_remote("choices"):
            return self.choices
        with self._building:
            return cast("ChoicesRegistry", self._opened(ChoicesRegistry.open(self.home)))

    @_once
    def tre_store(self) -> TreStore:
        from confide.tre.store import TreStore

        with self._building:
            return cast("TreStore", self._opened(TreStore.open(self.home)))

    @_once
    def service(self) -> QueryService:
        from confide.tre.wiring import query_service

        remote = self._served_with_hub("tre")
        if remote is not None:
            return cast("QueryService", remote)
        with self._building:
            service = query_service(
                self.home,
                access=self.access,
                registry=self.choices,
                pseudonymiser=self.pseudonymiser,
                records=self.hub.records,
                ledger=self.ledger,
                store=self.tre_store,
                engine=self.engine,
            )
            return cast("QueryService", self._opened(service))

    @_once
    def review(self) -> ReviewQueue:
        from confide.tre.wiring import review_queue

        remote = self._served_with_hub("review")
        if remote is not None:
            return cast("ReviewQueue", remote)
        with self._building:
            return review_queue(self.service)

    # -- events ----------------------------------------------------------------------------
    @_once
    def outboxes(self) -> list[Outbox]:
        """Every sending party's outbox, over its own store (opening no party)."""
        from confide.access import store as access_store
        from confide.choices import store as choices_store
        from confide.hub import store as hub_store

        boxes = []
        for party, table in (
            ("choices", choices_store.outbox),
            ("hub", hub_store.outbox),
            ("access", access_store.outbox),
        ):
            if self.is_remote(party):
                continue  # its own service relays it
            engine = opstore.open_store(party, self.home.party(party))
            self._closers.append(engine.dispose)
            boxes.append(Outbox(party, engine, table))
        return boxes

    @_once
    def relay(self) -> Relay:
        """The in-process relay from every outbox to its receivers here."""
        handlers: dict[type[Event], Callable[[Sequence[Any]], None]] = {
            ChoiceChanged: self._log_choices,
            Type1ObjectionSeen: self._log_choices,
            ErasureRequested: self._erase,
            SubmissionIngested: self._log_submissions,
            ProjectApplied: self._log_projects,
            ProjectDecided: self._log_projects,
        }
        return Relay(self.outboxes, handlers)

    def _changed(self) -> None:
        if self.wake is not None:
            self.wake.set()
        else:
            self.deliver()

    def deliver(self) -> RelayReport:
        """Deliver what is due now (failures stay pending with their next attempt set)."""
        return self.relay.deliver()

    def _relayed_elsewhere(self) -> list[str]:
        return [party for party in RELAYING if self.is_remote(party)]

    def own_relay_status(self) -> dict[str, dict[str, Any]]:
        """This process's outboxes: events delivered and pending, the pending ones (up to
        50 each) with their attempts, next attempt and last error's class, and the seconds
        until the next is due."""
        return {box.party: outbox_status(box, self.relay.clock()) for box in self.outboxes}

    def relay_status(self) -> dict[str, dict[str, Any]]:
        """Every outbox of the installation: this process's, and each relaying party's
        served elsewhere (asked of its service)."""
        found = self.own_relay_status()
        for party in self._relayed_elsewhere():
            found.update(getattr(self, party).relay_status())
        return found

    def own_relay_run(self, timeout: float = 60.0) -> dict[str, Any]:
        """Deliver what waits in this process's outboxes, waiting out backoffs, for at most
        ``timeout`` seconds (what is still pending is counted)."""
        return self.relay.drain(timeout=timeout).as_dict()

    def relay_run(self, timeout: float = 60.0) -> dict[str, Any]:
        """Deliver what waits in every outbox: this process's, then each relaying party's
        served elsewhere (its service delivers, a round of at most :data:`REMOTE_DRAIN`
        seconds at a time), for at most ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        total = self.own_relay_run(timeout)
        for party in self._relayed_elsewhere():
            while True:
                left = max(0.0, min(deadline - time.monotonic(), REMOTE_DRAIN))
                done = getattr(self, party).relay_run(left)
                total["delivered"] += done["delivered"]
                total["failed"] += done["failed"]
                total["errors"].extend(done["errors"])
                if not done["pending"] or time.monotonic() >= deadline:
                    total["pending"] += done["pending"]
                    break
        return total

    # -- receivers -------------------------------------------------------------------------
    def _log_choices(self, events: Sequence[ChoiceChanged | Type1ObjectionSeen]) -> None:
        """Every change into the ledger as a commitment only the person can recognise."""
        from confide.ledger.commitments import commitment_for

        secrets = self.salts.secrets_for(e.nhs_number for e in events)
        entries = []
        for e in events:
            if isinstance(e, Type1ObjectionSeen):
                on, off = (["share_nothing"], []) if e.dissent else ([], ["share_nothing"])
                channel = "gp_code"
            else:
                on, off, channel = list(e.set), list(e.cleared), e.channel
            body = {
                "commitment": commitment_for(secrets[e.nhs_number], e.change_id, "choice_changed"),
                "set": sorted(on),
                "cleared": sorted(off),
                "channel": channel,
            }
            entries.append((e.event_id, "choice_changed", body))
        self.ledger.append_once(entries)

    def _erase(self, events: Sequence[ErasureRequested]) -> None:
        """One erasure for a run of requests: tombstoned at the hub first, then every store,
        each confirming to the hub's erasure register, then the ledger (an erasure the hub
        could not confirm stays pending and is tried again)."""
        from confide.hub.erasure import HUB_STORES
        from confide.usage.choices import erasure_body

        numbers = sorted({e.nhs_number for e in events})
        # Minted for people not seen yet, so the tombstone also stops a later first upload.
        pseudonyms = [p for p in self.pseudonymiser.pseudonyms_to_erase(numbers) if p is not None]
        done = self.hub.erase_everywhere(pseudonyms, also=TRE_STORES)
        rows = done.rows
        secrets = self.salts.secrets_for(e.nhs_number for e in events)
        stores = [*HUB_STORES, *TRE_STORES]
        indices = self.ledger.append_once(
            (e.event_id, "erasure", erasure_body(secrets[e.nhs_number], e.change_id, stores))
            for e in events
        )
        at_hub: Any = self.hub if self.is_remote("hub") else self
        notices = at_hub.after_erasure(
            done.erasure_id, pseudonyms, bool(rows), indices[0] if indices else None,
            events[0].event_id,
        )  # fmt: skip
        self.erasures.append({"people": len(numbers), "rows": rows, "notices": notices})

    def after_erasure(
        self,
        erasure_id: str,
        pseudonyms: list[str],
        derived: bool,
        erasure_index: int | None,
        key: str,
    ) -> int:
        """The hub side's steps after the hub's own: deletion notices to recipients of earlier
        releases, then the TRE's stores; returns the notices sent."""
        notices = self._deletion_notices(pseudonyms, erasure_index, key)
        self._erase_from_tre(erasure_id, pseudonyms, derived=derived)
        # A pass that failed after the hub's steps (the ledger down, say) was retried as this
        # one, under a new id: finish what it left waiting, or it stays pending for ever.
        self.complete_erasures()
        return notices

    def _erase_from_tre(self, erasure_id: str, pseudonyms: list[str], *, derived: bool) -> None:
        """The TRE's stores: cohorts derived from the record store, and release membership
        files (after the deletion notices that needed them); each confirmed to the hub."""
        from confide.tre.membership_erasure import forget

        if derived:
            self.tre_store.drop_cache()  # cohorts derived from the store before the erasure
        self.hub.erasures.confirm(erasure_id, TRE_CACHE)
        forget([self.tre_store.releases, self.tre_store.pending], pseudonyms)
        self.hub.erasures.confirm(erasure_id, RELEASES)

    def complete_erasures(self) -> int:
        """Finish every erasure a crash left pending (the hub's steps, then the TRE's)."""
        if self.is_remote("hub"):
            return int(self.hub.complete_erasures())
        redone = self.hub.complete_erasures()
        waiting = sorted(
            set(self.hub.erasures.waiting(TRE_CACHE)) | set(self.hub.erasures.waiting(RELEASES))
        )
        for erasure_id in waiting:
            people = sorted(self.hub.erasures.pseudonyms_of([erasure_id]))
            self._erase_from_tre(erasure_id, people, derived=True)
        return redone + len(waiting)

    def _deletion_notices(self, pseudonyms: list[str], erasure_index: int | None, key: str) -> int:
        """Tell the recipients of earlier releases that included any of these people: one
        ``deletion_notice`` per project, naming its releases (never the people)."""
        from confide.usage.report import membership_digest, release_salt

        folder = self.tre_store.releases
        if not pseudonyms or not any(folder.glob("*.contributors")):
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
                f"{key}.notice.{project}",
                "deletion_notice",
                {
                    "notice_id": hashlib.sha256(f"{key}.{project}".encode()).hexdigest()[:32],
                    "project_id": project,
                    "organisation": item["organisation"],
                    "release_ids": sorted(item["release_ids"]),
                    **({"erasure_index": erasure_index} if erasure_index is not None else {}),
                },
            )
            for project, item in sorted(affected.items())
        ]
        if bodies:
            self.ledger.append_once(bodies)
        return len(bodies)

    def _log_submissions(self, events: Sequence[SubmissionIngested]) -> None:
        self.ledger.append_once(
            (
                e.event_id,
                "submission_ingested",
                {
                    "submission_id": e.submission_id,
                    "source": e.source,
                    "digest": e.digest,
                    "records": e.records,
                    "quarantined": e.quarantined,
                },
            )
            for e in events
        )

    def _log_projects(self, events: Sequence[ProjectApplied | ProjectDecided]) -> None:
        self.ledger.append_once(project_entry(e) for e in events)


def outbox_status(box: Outbox, now: Any) -> dict[str, Any]:
    """One outbox as operators see it (no event's body: only its kind)."""
    waiting = box.pending(limit=50)
    due_in = min(((p.next_attempt_at - now).total_seconds() for p in waiting), default=None)
    return {
        **box.counts(),
        "next_due_in": None if due_in is None else max(0.0, due_in),
        "waiting": [
            {
                "kind": p.event.kind,
                "attempts": p.attempts,
                "next_attempt_at": p.next_attempt_at.isoformat(),
                "last_error": p.last_error,
            }
            for p in waiting
        ],
    }


def project_entry(event: ProjectApplied | ProjectDecided) -> tuple[str, str, dict[str, Any]]:
    """The ledger entry for a project's event (kinds the ledger's schema knows)."""
    if isinstance(event, ProjectApplied):
        return (
            event.event_id,
            "project_applied",
            {
                "project_id": event.project_id,
                "organisation": event.organisation,
                "title": event.title,
                "purpose": event.purpose,
                "recipient_kind": event.recipient_kind,
                "legal_basis": event.legal_basis,
                "datasets": sorted(event.datasets),
            },
        )
    if event.decision == "approved":
        return (
            event.event_id,
            "project_approved",
            {
                "project_id": event.project_id,
                "approved_by": event.decided_by,
                "expires": event.expires,
            },
        )
    body: dict[str, Any] = {
        "subject": "project",
        "ref": event.project_id or "-",
        "reason": event.reason or f"project {event.decision}",
    }
    if event.project_id:
        body["project_id"] = event.project_id
    return event.event_id, "refusal", body


def open_rollout(home: Home, ledger: Any) -> Rollout:
    """The roll-out's store over ``home``, logging to ``ledger`` (opened per request or
    command by the roll-out's pages, API and commands, and closed by them)."""
    from confide.rollout.service import Rollout

    return Rollout.open(home, ledger)


def identity_for(registry: ChoicesRegistry, root: Any, **options: Any) -> IdentityService:
    """The identity checks over a registry (with the web app's notifier, say)."""
    from confide.choices.identity import IdentityService

    return IdentityService.open(registry, root, **options)


def compose(home: Home, *, engine: str = "duckdb") -> Composition:
    """Every party of ``home``, wired (close it, or use it as a context manager).

    The one composition, two transports: while a deployment runs for ``home`` (``confide
    up``), the parties are clients of its services; in a service's own process, its party is
    built here and the others are clients; otherwise every party is built in this process."""
    from confide.services.deployment import transport_for

    return Composition(home, engine=engine, transport=transport_for(home))
