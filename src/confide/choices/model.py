"""The vocabulary of choices: what a person can choose, how a change arrived, and who made it.

Kept apart from the store so the policy module, the API and the CLI share one set of names and
one way of reading them from user input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from confide.common.clock import as_utc, utcnow
from confide.common.enums import parse_enum
from confide.common.errors import InvalidInput


class Choice(StrEnum):
    """The four choices a person can hold; each is on (opted out) or off."""

    SHARE_NOTHING = "share_nothing"
    NO_RESEARCH = "no_research"
    NO_PLANNING = "no_planning"
    NO_COMMERCIAL = "no_commercial"


class Channel(StrEnum):
    """How a change reached the registry."""

    ONLINE = "online"
    GP_CODE = "gp_code"
    LETTER = "letter"
    PHONE = "phone"
    PROXY = "proxy"


class Actor(StrEnum):
    """Who made the change: the person, someone with authority to act for them, or their GP."""

    SELF = "self"
    PARENT = "parent"
    LPA = "lpa"
    GP = "gp"


CHOICE_HELP = {
    Choice.SHARE_NOTHING: "share nothing: no use at all, and erase what was already uploaded",
    Choice.NO_RESEARCH: "no research",
    Choice.NO_PLANNING: "no planning (including commissioning and public health work)",
    Choice.NO_COMMERCIAL: "no use by commercial organisations",
}


def parse_choice(raw: str | Choice) -> Choice:
    """A ``Choice`` from user input (``no-research`` and ``NO_RESEARCH`` both work)."""
    return parse_enum(Choice, "choice", raw)


def parse_channel(raw: str | Channel) -> Channel:
    return parse_enum(Channel, "channel", raw)


def parse_actor(raw: str | Actor) -> Actor:
    return parse_enum(Actor, "actor", raw)


def parse_changes(changes: Mapping[str | Choice, bool]) -> dict[Choice, bool]:
    """Validate a change set: known choice names, boolean values, at least one change."""
    if not changes:
        raise InvalidInput("No change was given.", hint="Say which choices to turn on or off.")
    out: dict[Choice, bool] = {}
    for name, value in changes.items():
        if not isinstance(value, bool):
            raise InvalidInput(f"The value for {str(name)[:40]!r} must be true or false.")
        out[parse_choice(name)] = value
    return out


def utc(moment: datetime | None) -> datetime:
    """``moment`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    return utcnow() if moment is None else as_utc(moment).astimezone(UTC)


@dataclass(frozen=True)
class Choices:
    """A person's current choices (everything off means no opt-out recorded)."""

    share_nothing: bool = False
    no_research: bool = False
    no_planning: bool = False
    no_commercial: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[Choice | str, bool]) -> Choices:
        return cls(**{str(parse_choice(k)): bool(v) for k, v in values.items()})

    def held(self) -> frozenset[Choice]:
        """The choices that are on."""
        return frozenset(c for c in Choice if getattr(self, c.value))

    def as_dict(self) -> dict[str, bool]:
        return {c.value: getattr(self, c.value) for c in Choice}


@dataclass(frozen=True)
class Proxy:
    """Someone acting for the person: a parent (child under 13) or a registered LPA attorney.

    ``child_birth_date`` is what a parent states; the registry prefers the date it holds.
    ``lpa_reference`` is the Office of the Public Guardian reference of a recorded LPA.
    """

    kind: Actor
    child_birth_date: date | None = None
    lpa_reference: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "child_birth_date": self.child_birth_date.isoformat()
            if self.child_birth_date
            else None,
            "lpa_reference": self.lpa_reference,
        }


@dataclass(frozen=True)
class ChoiceEvent:
    """One recorded change: one or more choices set on or off together, by one actor.

    ``seq`` is the recording order (ties in ``effective_at`` go to the later ``seq``).
    """

    change_id: str
    nhs_number: str
    changes: dict[Choice, bool]
    effective_at: datetime
    recorded_at: datetime
    channel: Channel
    actor: Actor
    proxy: dict[str, Any] | None = None
    seq: int = 0
    seqs: tuple[int, ...] = field(default=(), compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "changes": {c.value: v for c, v in self.changes.items()},
            "effective_at": self.effective_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "channel": self.channel.value,
            "actor": self.actor.value,
            "proxy": self.proxy,
        }


@dataclass(frozen=True)
class ChangeRequest:
    """One change to apply in a bulk call (validated as a whole before anything is written)."""

    nhs_number: str
    changes: Mapping[str | Choice, bool]
    channel: Channel | str
    actor: Actor | str = Actor.SELF
    proxy: Proxy | None = None
    at: datetime | None = None
