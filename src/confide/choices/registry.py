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
from typing import Any, NamedTuple, Protocol

import numpy as np
from sqlalchemy import Engine, func, insert, select, update

from confide.choices import store
from confide.choices.channels import HOLDING_CHANNELS, Fact, in_force
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
    number = nhs.normalise(raw)
    if reason or number is None:
        raise InvalidInput(
            f"{where}{reason}.", hint="Check the 10-digit NHS number and enter it again."
        )
    return number


class ValidChange(NamedTuple):
    """A :class:`ChangeRequest` once checked: every field parsed, the NHS number normalised."""

    nhs_number: str
    changes: dict[Choice, bool]
    channel: Channel
    actor: Actor
    proxy: Proxy | None
    at: datetime


class CommittedChange(NamedTuple):
    """What :func:`change_events` needs of one change written to the registry."""

    change_id: str
    nhs_number: str
    changes: dict[Choice, bool]
    channel: Channel


class _GpCodeSeen(NamedTuple):
    """A type 1 code as the registry compares it with the codes it already holds."""

    nhs_number: str
    dissent: bool
    at: datetime


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
        return cls(opstore.open_store("choices", folder), folder)

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
        events_table = store.choice_events
        with self.engine.begin() as conn:
            proxied = [c.nhs_number for c in parsed if c.actor in (Actor.PARENT, Actor.LPA)]
            births, lpas = self._proxy_facts(conn, proxied)
            details: list[dict[str, Any] | None] = []
            for i, change in enumerate(parsed):
                if (
                    change.actor == Actor.SELF
                    and change.proxy is None
                    and change.channel in _SELF_CHANNELS
                ):
                    details.append(None)  # the common case, decided without the rules' cost
                    continue
                held = lpas.get(change.nhs_number, frozenset())
                try:
                    details.append(
                        authorise(
                            change.actor,
                            change.channel,
                            change.proxy,
                            today=today,
                            birth_date_on_record=births.get(change.nhs_number),
                            lpa_on_record=held.__contains__,
                        )
                    )
                except InvalidInput as exc:
                    raise _numbered(exc, i, len(parsed)) from None
            ids = store.person_ids(conn, (c.nhs_number for c in parsed), create=True)
            rows: list[dict[str, Any]] = []
            change_ids = []
            for change, proxy_details in zip(parsed, details, strict=True):
                change_id = uuid.uuid4().hex
                change_ids.append(change_id)
                person = ids[change.nhs_number]
                for choice, value in change.changes.items():
                    rows.append(
                        {
                            "change_id": change_id,
                            "person_id": person,
                            "choice": choice.value,
                            "value": value,
                            "effective_at": change.at,
                            "recorded_at": recorded,
                            "channel": change.channel.value,
                            "actor": change.actor.value,
                            "proxy": proxy_details,
                        }
                    )
            # Plain executemany, then read our sequence numbers back: sequences only grow, so
            # our rows are all above the maximum seen before (RETURNING per row is far slower).
            seq_column = events_table.c.seq
            before = conn.execute(select(func.coalesce(func.max(seq_column), 0))).scalar_one()
            conn.execute(insert(events_table), rows)
            mine = set(change_ids)
            seq_of = {
                (change_id, choice): seq
                for seq, change_id, choice in conn.execute(
                    select(seq_column, events_table.c.change_id, events_table.c.choice).where(
                        seq_column > before
                    )
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
                    CommittedChange(change_id, change.nhs_number, change.changes, change.channel)
                    for change_id, change in zip(change_ids, parsed, strict=True)
                ),
            )
        events = []
        for change_id, change, proxy_details in zip(change_ids, parsed, details, strict=True):
            seqs = tuple(seq_of[(change_id, choice.value)] for choice in change.changes)
            events.append(
                ChoiceEvent(
                    change_id=change_id,
                    nhs_number=change.nhs_number,
                    changes=change.changes,
                    effective_at=change.at,
                    recorded_at=recorded,
                    channel=change.channel,
                    actor=change.actor,
                    proxy=proxy_details,
                    seq=max(seqs),
                    seqs=seqs,
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
        wanted = [
            _GpCodeSeen(checked_number(code.nhs_number), bool(code.dissent), _moment(code.at))
            for code in codes
        ]
        if not wanted:
            return []
        events_table = store.choice_events
        seen: set[_GpCodeSeen] = set()
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, (w.nhs_number for w in wanted), create=False)
            number_of = {person_id: number for number, person_id in ids.items()}
            for part in store.chunks(list(number_of)):
                rows = conn.execute(
                    select(
                        events_table.c.person_id,
                        events_table.c.value,
                        events_table.c.effective_at,
                    ).where(
                        events_table.c.person_id.in_(part),
                        events_table.c.choice == Choice.SHARE_NOTHING.value,
                        events_table.c.channel == Channel.GP_CODE.value,
                    )
                )
                seen.update(
                    _GpCodeSeen(number_of[person_id], bool(value), utc(effective_at))
                    for person_id, value, effective_at in rows
                )
        fresh = []
        for code_seen in wanted:
            if code_seen not in seen:
                seen.add(code_seen)
                fresh.append(code_seen)
        return (
            self.bulk_set(
                ChangeRequest(
                    code_seen.nhs_number,
                    {Choice.SHARE_NOTHING: code_seen.dissent},
                    Channel.GP_CODE,
                    Actor.GP,
                    None,
                    code_seen.at,
                )
                for code_seen in fresh
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
        state_table = store.choice_state
        facts: dict[int, dict[str, dict[Channel, bool]]] = defaultdict(lambda: defaultdict(dict))
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, numbers, create=False)
            for part in store.chunks(list(ids.values())):
                rows = conn.execute(
                    select(
                        state_table.c.person_id,
                        state_table.c.choice,
                        state_table.c.channel,
                        state_table.c.value,
                    ).where(state_table.c.person_id.in_(part))
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
        state_table = store.choice_state
        out: dict[Choice, dict[Channel, bool]] = {}
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, [number], create=False)
            if number not in ids:
                return out
            rows = conn.execute(
                select(state_table.c.choice, state_table.c.channel, state_table.c.value).where(
                    state_table.c.person_id == ids[number]
                )
            )
            for choice, channel, value in rows:
                out.setdefault(Choice(choice), {})[Channel(channel)] = bool(value)
        return out

    def publishable_statistics(
        self, by: str = "practice", until: date | None = None
    ) -> list[dict[str, Any]]:
        """The public dashboard's rows, protected here, where the statistics key lives."""
        from confide.choices.statistics import publishable

        return publishable(self, by, until)

    def shares_nothing(self, nhs_numbers: list[str]) -> list[bool]:
        """For each (valid) NHS number, whether the person has chosen to share nothing."""
        current = self.current_many(nhs_numbers)
        return [current[checked_number(n)].share_nothing for n in nhs_numbers]

    def history(self, nhs_number: str) -> list[ChoiceEvent]:
        """Every change recorded for the person, in recording order."""
        number = checked_number(nhs_number)
        events_table = store.choice_events
        with self.engine.connect() as conn:
            ids = store.person_ids(conn, [number], create=False)
            if number not in ids:
                return []
            found = conn.execute(
                select(events_table)
                .where(events_table.c.person_id == ids[number])
                .order_by(events_table.c.seq)
            ).mappings()
            rows = [dict(row) for row in found]
        return self._events_from_rows(rows, {ids[number]: number})

    def derived_current(self, nhs_number: str) -> Choices:
        """Current choices folded from the full history (the check on the state index)."""
        return store.derive(
            Fact(choice.value, event.channel.value, value, event.effective_at, seq)
            for event in self.history(nhs_number)
            for (choice, value), seq in zip(event.changes.items(), event.seqs, strict=True)
        )

    def events_since(self, seq: int, limit: int = 10_000) -> list[ChoiceEvent]:
        """Changes recorded after ``seq`` (a propagator catching up after a failure)."""
        events_table, people_table = store.choice_events, store.people
        with self.engine.connect() as conn:
            found = conn.execute(
                select(events_table, people_table.c.nhs_number)
                .join(people_table, people_table.c.id == events_table.c.person_id)
                .where(events_table.c.seq > seq)
                .order_by(events_table.c.seq)
                .limit(limit)
            ).mappings()
            rows = [dict(row) for row in found]
        names = {row["person_id"]: row["nhs_number"] for row in rows}
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
        state_table, people_table = store.choice_state, store.people
        with self.engine.connect() as conn:
            numbers = (
                conn.execute(
                    select(people_table.c.nhs_number)
                    .join(state_table, state_table.c.person_id == people_table.c.id)
                    .where(
                        state_table.c.choice.in_(wanted),
                        state_table.c.value.is_(True),
                        state_table.c.channel.in_(HOLDING_CHANNELS),
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
        recs = [
            record if isinstance(record, DemographicRecord) else DemographicRecord(*record)
            for record in records
        ]
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
        demographics_table = store.demographics
        with self.engine.begin() as conn:
            ids = store.person_ids(conn, (row["nhs_number"] for row in rows), create=True)
            values = [{**row, "person_id": ids[row.pop("nhs_number")]} for row in rows]
            for part in store.chunks([v["person_id"] for v in values]):
                conn.execute(
                    demographics_table.delete().where(demographics_table.c.person_id.in_(part))
                )
            if values:
                conn.execute(insert(demographics_table), values)
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
        authorities_table = store.proxy_authorities
        with self.engine.begin() as conn:
            ids = store.person_ids(conn, [number], create=False)
            if number in ids:
                conn.execute(
                    update(authorities_table)
                    .where(
                        authorities_table.c.person_id == ids[number],
                        authorities_table.c.reference == ref,
                    )
                    .values(revoked_at=utc(at))
                )

    def _proxy_facts(
        self, conn: Any, numbers: list[str]
    ) -> tuple[dict[str, date], dict[str, frozenset[str]]]:
        if not numbers:
            return {}, {}
        ids = store.person_ids(conn, numbers, create=False)
        by_id = {person_id: number for number, person_id in ids.items()}
        births: dict[str, date] = {}
        lpas: dict[str, builtins.set[str]] = defaultdict(builtins.set)
        demographics_table, authorities_table = store.demographics, store.proxy_authorities
        for part in store.chunks(list(by_id)):
            for person, birth in conn.execute(
                select(demographics_table.c.person_id, demographics_table.c.birth_date).where(
                    demographics_table.c.person_id.in_(part)
                )
            ):
                if birth is not None:
                    births[by_id[person]] = birth
            for person, ref in conn.execute(
                select(authorities_table.c.person_id, authorities_table.c.reference).where(
                    authorities_table.c.person_id.in_(part),
                    authorities_table.c.revoked_at.is_(None),
                    authorities_table.c.kind == "lpa",
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
                    changes={Choice(row["choice"]): bool(row["value"]) for row in group},
                    effective_at=utc(first["effective_at"]),
                    recorded_at=utc(first["recorded_at"]),
                    channel=Channel(first["channel"]),
                    actor=Actor(first["actor"]),
                    proxy=first["proxy"],
                    seq=max(row["seq"] for row in group),
                    seqs=tuple(row["seq"] for row in group),
                )
            )
        return events


_SELF_CHANNELS = frozenset({Channel.ONLINE, Channel.LETTER, Channel.PHONE})


def _numbered(exc: InvalidInput, index: int, total: int) -> InvalidInput:
    """Say which change of a bulk call was wrong (numbered from 1)."""
    return exc.prefixed(f"Change {index + 1}: ") if total > 1 else exc


def _parse_requests(items: list[ChangeRequest]) -> list[ValidChange]:
    """Validate every request (NHS numbers vectorised) before anything is written."""
    numbers = [nhs.normalise(request.nhs_number) or "" for request in items]
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
                ValidChange(
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
    changes: Iterable[CommittedChange],
) -> list[Event]:
    """The events one committed batch of changes means for other parties: a type 1 code seen
    at a practice or another channel's change, and an erasure request for each change that
    turns share-nothing on."""
    out: list[Event] = []
    erasures: list[Event] = []  # after the changes, so the relay erases a batch in one pass
    for change in changes:
        change_id, number, choices = change.change_id, change.nhs_number, change.changes
        if change.channel == Channel.GP_CODE and Choice.SHARE_NOTHING in choices:
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
                    tuple(sorted(choice.value for choice, on in choices.items() if on)),
                    tuple(sorted(choice.value for choice, on in choices.items() if not on)),
                    change.channel.value,
                )
            )
        if choices.get(Choice.SHARE_NOTHING) is True:
            erasures.append(ErasureRequested(f"{change_id}.erasure", change_id, number))
    return out + erasures
