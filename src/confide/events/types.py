"""The typed events parties send each other (never ``(kind, dict)`` pairs).

Each event has an ``event_id`` its receivers deduplicate on, and a ``kind`` that names its
class in the outbox. An event carries only what its receivers need: those carrying an NHS
number (choice changes, erasure requests) stay between the choices registry and the parties
that may hold one; the ledger gets only the public body made from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every event: an id receivers deduplicate on."""

    kind: ClassVar[str] = "event"
    event_id: str

    def body(self) -> dict[str, Any]:
        """The event's fields (without ``event_id``) as JSON-ready values."""
        out = dataclasses.asdict(self)
        out.pop("event_id")
        return {
            name: list(value) if isinstance(value, tuple) else value for name, value in out.items()
        }


@dataclass(frozen=True)
class ChoiceEventBase(Event):
    """Base of the events one recorded change of a person's choices makes: the registry's
    ``change_id`` and the person's NHS number (so these go only to parties that may hold it)."""

    change_id: str
    nhs_number: str


@dataclass(frozen=True)
class ChoiceChanged(ChoiceEventBase):
    """A person's choices changed through any channel but a GP code."""

    kind: ClassVar[str] = "choice_changed"
    set: tuple[str, ...]
    cleared: tuple[str, ...]
    channel: str


@dataclass(frozen=True)
class Type1ObjectionSeen(ChoiceEventBase):
    """A type 1 objection (``dissent``) or its withdrawal, coded at a practice."""

    kind: ClassVar[str] = "type1_objection_seen"
    dissent: bool


@dataclass(frozen=True)
class ErasureRequested(ChoiceEventBase):
    """A person now shares nothing: every store that holds them must erase them."""

    kind: ClassVar[str] = "erasure_requested"


@dataclass(frozen=True)
class SubmissionIngested(Event):
    """The hub ingested a submission (counts and the manifest's digest, nobody's data)."""

    kind: ClassVar[str] = "submission_ingested"
    submission_id: str
    source: str
    digest: str
    records: int
    quarantined: int


@dataclass(frozen=True)
class ProjectApplied(Event):
    """An organisation applied for a project."""

    kind: ClassVar[str] = "project_applied"
    project_id: str
    organisation: str
    title: str
    purpose: str
    recipient_kind: str
    legal_basis: str
    datasets: tuple[str, ...]


@dataclass(frozen=True)
class ProjectDecided(Event):
    """A project was approved, rejected, refused on its terms, or suspended."""

    kind: ClassVar[str] = "project_decided"
    project_id: str
    decision: str  # approved | rejected | refused | suspended
    decided_by: str
    reason: str = ""
    expires: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        ChoiceChanged,
        Type1ObjectionSeen,
        ErasureRequested,
        SubmissionIngested,
        ProjectApplied,
        ProjectDecided,
    )
}


def event_from_row(kind: str, event_id: str, body: dict[str, Any]) -> Event:
    """The typed event an outbox row holds (an unknown kind is an error, never skipped)."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {"event_id": event_id}
    for name, value in body.items():
        if name not in fields:
            raise ValueError(f"{kind} has no field {name!r}")
        values[name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
