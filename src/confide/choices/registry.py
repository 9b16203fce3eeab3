"""The choices registry: record every change as an event, answer "what does this person want?"

This party (with the pseudonymiser) is the only one that holds NHS numbers. Every change puts
its events (:func:`change_events`) in the registry's outbox in the same transaction, for the
relay to deliver; in-process code may also hear of changes through ``listeners`` (called after
each commit, once per change) or read current
choices through :meth:`ChoicesRegistry.current_many` / :meth:`ChoicesRegistry.holders`.
"""

from __future__ import annotations

import builtins
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, func, insert, select, update

from confide.choices import store
from confide.choices.channels import HOLDING_CHANNELS, in_force
from confide.choices.model import (
    Actor,
    ChangeRequest,
    Channel,
    Choice,
    ChoiceEvent,
    Choices,
    Proxy,
    parse_actor,
    parse_changes,
    parse_channel,
    utc,
)
from confide.choices.proxy import authorise, normalise_lpa_reference
from confide.common import nhs_number as nhs
from confide.common import opstore, postcode
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.events import outbox
from confide.events.types import ChoiceChanged, ErasureRequested, Event, Type1ObjectionSeen

Listener = Callable[[ChoiceEvent], None]


class GpCode(Protocol):
    """A type 1 code seen in a practice submission (e.g. the pseudonymiser's ``Type1Change``)."""

    @property
    def nhs_number(self) -> str: ...
    @property
    def dissent(self) -> bool: ...
    @property
    def at(self) -> date | datetime | None: ...


@dataclass(frozen=True)
class DemographicRecord:
    """Identity facts for online checks, and practice/area for statistics."""

    nhs_number: str
    birth_date: date | None
    postcode: str | None
    practice: str | None = None
    district: str | None = None
    contact: str | None = None


def checked_number(raw: str, where: str = "") -> str:
    """The normalised NHS number, or InvalidInput saying why (never echoing it)."""
    reason = nhs.why_invalid(raw)
    if reason:
        raise InvalidInput(
            f"{where}{reason}.", hint="Check the 10-digit NHS number and enter it again."
        )
    return nhs.normalise(raw)  # type: ignore[return-value]


def _moment(at: date | datetime | None) -> datetime:
    if isinstance(at, datetime):
        return utc(at)
    if isinstance(at, date):
        return datetime.combine(at, time(0), tzinfo=UTC)
    return utc(None)


class ChoicesRegistry:
    """The patients' choices registry over its own operational store."""

    def __init__(self, engine: Engine, folder: Any = None) -> None:
        self.engine = engine
        self.folder = folder
        self.listeners: list[Listener] = []
        # Called once per committed batch (a bulk change, a submission's type 1 codes), so
        # work that should happen once for many people (erasure) is not repeated per person.
        self.batch_listeners: list[Callable[[Sequence[ChoiceEvent]], None]] = []

    @classmethod
    def open(cls, home: Home) -> ChoicesRegistry:
        folder = home.party("choices")
        engine = opstore.make_engine("choices", folder)
        opstore.migrate(engine, "choices")
        return cls(engine, folder)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ChoicesRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- changes ---------------------------------------------------------------------------

    def set(
        self,
        nhs_number: str,
        changes: dict[str, bool] | dict[Choice, bool],
        channel: Channel | str,
        actor: Actor | str = Actor.SELF,
        proxy: Proxy | None = None,
        at: datetime | None = None,
    ) -> ChoiceEvent:
        """Record one change (one or more choices together) and tell the listeners."""
        given: dict[str | Choice, bool] = dict(changes.items())
        request = ChangeRequest(nhs_number, given, channel, actor, proxy, at)
        return self.bulk_set([request])[0]

    def bulk_set(
        self, requests: Iterable[ChangeRequest], *, notify: bool = True
    ) -> list[ChoiceEvent]:
        """Record many changes in one transaction: all are validated first, then all or none."""
        items = list(requests)
        if not items:
            return []
        parsed = _parse_requests(items)
        today = utc(None).date()
        recorded = utc(None)
        ev = store.choice_events
        with self.engine.begin() as conn:
            proxied = [p[0] for p in parsed if p[3] in (Actor.PARENT, Actor.LPA)]
            births, lpas = self._proxy_facts(conn, proxied)
            details: list[dict[str, Any] | None] = []
            for i, (number, _c, channel, actor, proxy, _at) in enumerate(parsed):
                if actor == Actor.SELF and proxy is None and channel in _SELF_CHANNELS:
                    details.append(None)  # the common case, decided without the rules' cost
                    continue
                held = lpas.get(number, frozenset())
                try:
                    details.append(
                        authorise(
                            actor,
                            channel,
                            proxy,
                            today=today,
                            birth_date_on_record=births.get(number),
                            lpa_on_record=held.__contains__,
                        )
                    )
                except InvalidInput as exc:
                    raise _numbered(exc, i, len(parsed)) from None
            ids = store.person_ids(conn, (p[0] for p in parsed), create=True)
            rows: list[dict[str, Any]] = []
            change_ids = []
            for (number, changes, channel, actor, _p, at), proxy_details in zip(
                parsed, details, strict=True
            ):
                change_id = uuid.uuid4().hex
                change_ids.append(change_id)
                person = ids[number]
                for choice, value in changes.items():
                    rows.append(
                        {
                            "change_id": change_id,
                            "person_id": person,
                            "choice": choice.value,
                            "value": value,
                            "effective_at": at,
                            "recorded_at": recorded,
                            "channel": channel.value,
                            "actor": actor.value,
                            "proxy": proxy_details,
                        }
                    )
            # Plain executemany, then read our sequence numbers back: sequences only grow, so
            # our rows are all above the maximum seen before (RETURNING per row is far slower).
            before = conn.execute(select(func.coalesce(func.max(ev.c.seq), 0))).scalar_one()
            conn.execute(insert(ev), rows)
            mine = set(change_ids)
            seq_of = {
                (change_id, choice): seq
                for seq, change_id, choice in conn.execute(
                    select(ev.c.seq, ev.c.change_id, ev.c.choice).where(ev.c.seq > before)
                )
                if change_id in mine
            }
            for row in rows:
                row["seq"] = seq_of[(row["change_id"], row["choice"])]
            store.fold_into_state(conn, rows)
            store.bump_version(conn)
            outbox.write(
                conn,
                store.outbox,
                change_events(
                    (change_id, number, changes, channel)
                    for change_id, (number, changes, channel, *_rest) in zip(
                        change_ids, parsed, strict=True
                    )
                ),
            )
        events = []
        for change_id, (number, changes, channel, actor, _p, at), proxy_details in zip(
            change_ids, parsed, details, strict=True
        ):
            seqs = tuple(seq_of[(change_id, c.value)] for c in changes)
            events.append(
                ChoiceEvent(
                    change_id,
                    number,
                    changes,
                    at,
                    recorded,
                    channel,
                    actor,
                    proxy_details,
                    max(seqs),
                    seqs,
                )
            )
        if notify:
            self._notify(events)
        return events

    def apply_gp_code(
        self, nhs_number: str, dissent: bool, at: date | datetime | None
    ) -> ChoiceEvent | None:
        """A type 1 code (dissent, or its withdrawal) from a practice submission.

        Recorded as ``share_nothing`` on/off through the GP-code channel. Idempotent: the same
        code seen again in a later submission adds nothing. Returns None when nothing changed.
        """
        events = self.apply_gp_codes([_Code(nhs_number, dissent, at)])
        return events[0] if events else None

    def apply_gp_codes(self, codes: Iterable[GpCode]) -> list[ChoiceEvent]:
        """Bulk form of :meth:`apply_gp_code` (fits the pseudonymiser's ``type1_listeners``)."""
        wanted = [(checked_number(c.nhs_number), bool(c.dissent), _moment(c.at)) for c in codes]
        if not wanted:
            return []
        ev = store.choice_events
        seen: set[tuple[str, bool, datetime]] = set()
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, (w[0] for w in wanted), create=False)
            by_id = {v: k for k, v in ids.items()}
            for part in store.chunks(list(by_id)):
                rows = conn.execute(
                    select(ev.c.person_id, ev.c.value, ev.c.effective_at).where(
                        ev.c.person_id.in_(part),
                        ev.c.choice == Choice.SHARE_NOTHING.value,
                        ev.c.channel == Channel.GP_CODE.value,
                    )
                )
                seen.update((by_id[p], bool(v), utc(t)) for p, v, t in rows)
        fresh = []
        for item in wanted:
            if item not in seen:
                seen.add(item)
                fresh.append(item)
        return (
            self.bulk_set(
                ChangeRequest(n, {Choice.SHARE_NOTHING: d}, Channel.GP_CODE, Actor.GP, None, at)
                for n, d, at in fresh
            )
            if fresh
            else []
        )

    def _notify(self, events: Sequence[ChoiceEvent]) -> None:
        for listener in list(self.listeners):
            for event in events:
                listener(event)
        if events:
            for batch_listener in list(self.batch_listeners):
                batch_listener(events)

    # --- reading ---------------------------------------------------------------------------

    def current(self, nhs_number: str) -> Choices:
        """The person's current choices (nothing held when the registry has never heard of them)."""
        return self.current_many([nhs_number])[checked_number(nhs_number)]

    def current_many(self, nhs_numbers: Iterable[str]) -> dict[str, Choices]:
        """Current choices for many people in a few queries, keyed by normalised NHS number."""
        numbers = [checked_number(n) for n in nhs_numbers]
        st = store.choice_state
        facts: dict[int, dict[str, dict[Channel, bool]]] = defaultdict(lambda: defaultdict(dict))
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, numbers, create=False)
            for part in store.chunks(list(ids.values())):
                rows = conn.execute(
                    select(st.c.person_id, st.c.choice, st.c.channel, st.c.value).where(
                        st.c.person_id.in_(part)
                    )
                )
                for person, choice, channel, value in rows:
                    facts[person][choice][Channel(channel)] = bool(value)

        def choices_of(person: int) -> Choices:
            return Choices(**{c: in_force(f) for c, f in facts.get(person, {}).items()})

        return {n: choices_of(ids[n]) if n in ids else Choices() for n in numbers}

    def facts(self, nhs_number: str) -> dict[Choice, dict[Channel, bool]]:
        """The latest fact of each channel for each choice (why a choice is or is not in force,
        and which channel must withdraw it)."""
        number = checked_number(nhs_number)
        st = store.choice_state
        out: dict[Choice, dict[Channel, bool]] = {}
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, [number], create=False)
            if number not in ids:
                return out
            rows = conn.execute(
                select(st.c.choice, st.c.channel, st.c.value).where(st.c.person_id == ids[number])
            )
            for choice, channel, value in rows:
                out.setdefault(Choice(choice), {})[Channel(channel)] = bool(value)
        return out

    def shares_nothing(self, nhs_numbers: list[str]) -> list[bool]:
        """For each (valid) NHS number, whether the person has chosen to share nothing."""
        current = self.current_many(nhs_numbers)
        return [current[nhs.normalise(n)].share_nothing for n in nhs_numbers]  # type: ignore[index]

    def history(self, nhs_number: str) -> list[ChoiceEvent]:
        """Every change recorded for the person, in recording order."""
        number = checked_number(nhs_number)
        ev = store.choice_events
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, [number], create=False)
            if number not in ids:
                return []
            found = conn.execute(
                select(ev).where(ev.c.person_id == ids[number]).order_by(ev.c.seq)
            ).mappings()
            rows = [dict(r) for r in found]
        return self._events_from_rows(rows, {ids[number]: number})

    def derived_current(self, nhs_number: str) -> Choices:
        """Current choices folded from the full history (the check on the state index)."""
        return store.derive(
            (c.value, e.channel.value, v, e.effective_at, seq)
            for e in self.history(nhs_number)
            for (c, v), seq in zip(e.changes.items(), e.seqs, strict=True)
        )

    def events_since(self, seq: int, limit: int = 10_000) -> list[ChoiceEvent]:
        """Changes recorded after ``seq`` (a propagator catching up after a failure)."""
        ev, pp = store.choice_events, store.people
        with self.engine.connect() as conn:
            found = conn.execute(
                select(ev, pp.c.nhs_number)
                .join(pp, pp.c.id == ev.c.person_id)
                .where(ev.c.seq > seq)
                .order_by(ev.c.seq)
                .limit(limit)
            ).mappings()
            rows = [dict(r) for r in found]
        names = {r["person_id"]: r["nhs_number"] for r in rows}
        return self._events_from_rows(rows, names)

    def version(self) -> int:
        """A counter that grows with every recorded change (cheap: one primary-key read).

        Equal values mean the choices are unchanged, so anything derived from them (the TRE's
        exclusions) may be reused; it is bumped in the same transaction as the change."""
        with self.engine.connect() as conn:
            return store.read_version(conn)

    def holders(self, choices: Iterable[Choice]) -> np.ndarray:
        """Sorted unique NHS numbers (int64) of everyone holding any of ``choices`` now."""
        wanted = [Choice(c).value for c in choices]
        if not wanted:
            return np.empty(0, dtype=np.int64)
        st, pp = store.choice_state, store.people
        with self.engine.connect() as conn:
            numbers = (
                conn.execute(
                    select(pp.c.nhs_number)
                    .join(st, st.c.person_id == pp.c.id)
                    .where(
                        st.c.choice.in_(wanted),
                        st.c.value.is_(True),
                        st.c.channel.in_(HOLDING_CHANNELS),
                    )
                    .distinct()
                )
                .scalars()
                .all()
            )
        if not numbers:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.array(numbers, dtype="S10").astype(np.int64))

    # --- demographics and proxies ----------------------------------------------------------

    def enrol_demographics(self, records: Iterable[DemographicRecord | tuple[Any, ...]]) -> int:
        """Load (or refresh) identity facts: ``(nhs, dob, postcode[, practice, district,
        contact])`` tuples or records. Postcodes are normalised; the district is derived from
        the postcode when not given. Returns the number of people enrolled."""
        recs = [r if isinstance(r, DemographicRecord) else DemographicRecord(*r) for r in records]
        rows: list[dict[str, Any]] = []
        for i, rec in enumerate(recs):
            number = checked_number(rec.nhs_number, f"Record {i + 1}: ")
            birth = rec.birth_date
            if isinstance(birth, str):
                try:
                    birth = date.fromisoformat(birth)
                except ValueError:
                    raise InvalidInput(
                        f"Record {i + 1}: the date of birth is not a YYYY-MM-DD date."
                    ) from None
            code = postcode.normalise(rec.postcode)
            rows.append(
                {
                    "nhs_number": number,
                    "birth_date": birth,
                    "postcode": code,
                    "practice": rec.practice,
                    "district": rec.district or postcode.district(code),
                    "contact": rec.contact,
                }
            )
        dm = store.demographics
        with self.engine.begin() as conn:
            ids = store.person_ids(conn, (r["nhs_number"] for r in rows), create=True)
            values = [{**r, "person_id": ids[r.pop("nhs_number")]} for r in rows]
            for part in store.chunks([v["person_id"] for v in values]):
                conn.execute(dm.delete().where(dm.c.person_id.in_(part)))
            if values:
                conn.execute(insert(dm), values)
        return len(values)

    def record_lpa(self, nhs_number: str, reference: str, at: datetime | None = None) -> str:
        """Record a registered lasting power of attorney so its holder may act as a proxy."""
        number = checked_number(nhs_number)
        ref = normalise_lpa_reference(reference)
        with self.engine.begin() as conn:
            ids = store.person_ids(conn, [number], create=True)
            conn.execute(
                insert(store.proxy_authorities).values(
                    person_id=ids[number], kind="lpa", reference=ref, recorded_at=utc(at)
                )
            )
        return ref

    def revoke_lpa(self, nhs_number: str, reference: str, at: datetime | None = None) -> None:
        number = checked_number(nhs_number)
        ref = normalise_lpa_reference(reference)
        pa = store.proxy_authorities
        with self.engine.begin() as conn:
            ids = store.person_ids(conn, [number], create=False)
            if number in ids:
                conn.execute(
                    update(pa)
                    .where(pa.c.person_id == ids[number], pa.c.reference == ref)
                    .values(revoked_at=utc(at))
                )

    def _proxy_facts(
        self, conn: Any, numbers: list[str]
    ) -> tuple[dict[str, date], dict[str, frozenset[str]]]:
        if not numbers:
            return {}, {}
        ids = store.person_ids(conn, numbers, create=False)
        by_id = {v: k for k, v in ids.items()}
        births: dict[str, date] = {}
        lpas: dict[str, builtins.set[str]] = defaultdict(builtins.set)
        dm, pa = store.demographics, store.proxy_authorities
        for part in store.chunks(list(by_id)):
            for person, birth in conn.execute(
                select(dm.c.person_id, dm.c.birth_date).where(dm.c.person_id.in_(part))
            ):
                if birth is not None:
                    births[by_id[person]] = birth
            for person, ref in conn.execute(
                select(pa.c.person_id, pa.c.reference).where(
                    pa.c.person_id.in_(part), pa.c.revoked_at.is_(None), pa.c.kind == "lpa"
                )
            ):
                lpas[by_id[person]].add(ref)
        return births, {number: frozenset(refs) for number, refs in lpas.items()}

    @staticmethod
    def _events_from_rows(
        rows: Sequence[dict[str, Any]], numbers: dict[int, str]
    ) -> list[ChoiceEvent]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(row["change_id"], []).append(row)
        events = []
        for change_id, group in grouped.items():
            first = group[0]
            events.append(
                ChoiceEvent(
                    change_id=change_id,
                    nhs_number=numbers[first["person_id"]],
                    changes={Choice(r["choice"]): bool(r["value"]) for r in group},
                    effective_at=utc(first["effective_at"]),
                    recorded_at=utc(first["recorded_at"]),
                    channel=Channel(first["channel"]),
                    actor=Actor(first["actor"]),
                    proxy=first["proxy"],
                    seq=max(r["seq"] for r in group),
                    seqs=tuple(r["seq"] for r in group),
                )
            )
        return events


_SELF_CHANNELS = frozenset({Channel.ONLINE, Channel.LETTER, Channel.PHONE})


def _numbered(exc: InvalidInput, index: int, total: int) -> InvalidInput:
    """Say which change of a bulk call was wrong (numbered from 1)."""
    if total > 1:
        exc.message = f"Change {index + 1}: {exc.message}"
        exc.args = (exc.message,)
    return exc


def _parse_requests(items: list[ChangeRequest]) -> list[tuple[Any, ...]]:
    """Validate every request (NHS numbers vectorised) before anything is written."""
    numbers = [nhs.normalise(r.nhs_number) or "" for r in items]
    ok = np.array([len(n) == 10 for n in numbers], dtype=bool)
    if len(items):
        ok &= nhs.valid_mask(np.array(numbers, dtype="S10"))
    parsed = []
    for i, req in enumerate(items):
        try:
            if not ok[i]:
                checked_number(req.nhs_number)
                raise InvalidInput("NHS number is not valid.")  # pragma: no cover - safety
            parsed.append(
                (
                    numbers[i],
                    parse_changes(req.changes),
                    parse_channel(req.channel),
                    parse_actor(req.actor),
                    req.proxy,
                    _moment(req.at),
                )
            )
        except InvalidInput as exc:
            raise _numbered(exc, i, len(items)) from None
    return parsed


@dataclass(frozen=True)
class _Code:
    nhs_number: str
    dissent: bool
    at: date | datetime | None


def change_events(
    changes: Iterable[tuple[str, str, dict[Choice, bool], Channel]],
) -> list[Event]:
    """The events one committed batch of changes means for other parties: a type 1 code seen
    at a practice or another channel's change, and an erasure request for each change that
    turns share-nothing on."""
    out: list[Event] = []
    erasures: list[Event] = []  # after the changes, so the relay erases a batch in one pass
    for change_id, number, choices, channel in changes:
        if channel == Channel.GP_CODE and Choice.SHARE_NOTHING in choices:
            out.append(
                Type1ObjectionSeen(
                    f"{change_id}.type1", change_id, number, bool(choices[Choice.SHARE_NOTHING])
                )
            )
        else:
            out.append(
                ChoiceChanged(
                    f"{change_id}.changed",
                    change_id,
                    number,
                    tuple(sorted(c.value for c, on in choices.items() if on)),
                    tuple(sorted(c.value for c, on in choices.items() if not on)),
                    channel.value,
                )
            )
        if choices.get(Choice.SHARE_NOTHING) is True:
            erasures.append(ErasureRequested(f"{change_id}.erasure", change_id, number))
    return out + erasures
