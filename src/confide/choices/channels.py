"""How facts from different channels combine into the choice in force: the channel rule table.

Each channel a change can arrive through (the GP's type 1 code and its withdrawal, online, by
letter, by phone, by a proxy) keeps its own fact per choice: the latest change that arrived
through that channel. A fact is changed only by a later fact from the same channel, so a GP's
type 1 withdrawal cannot switch off a share-nothing chosen online, and a letter cannot undo what
a proxy recorded. :data:`CHANNEL_RULES` says, per channel, whose voice it carries and whether
its fact holds a choice in force; :func:`in_force` is the one reading of that table, the
registry's SQL index answers the same question, and ``docs/choices-policy.md`` carries the table
(:func:`channel_rules_markdown`), tested equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from confide.choices.model import Channel, Choice, Choices, utc


@dataclass(frozen=True)
class ChannelRule:
    """One row: a channel, whose voice it carries, and what its latest fact does."""

    channel: Channel
    voice: str
    holds: bool  # a fact "on" from this channel keeps the choice in force
    changed_by: str


CHANNEL_RULES: tuple[ChannelRule, ...] = (
    ChannelRule(
        Channel.GP_CODE,
        "the person's GP record: a type 1 objection code, or its withdrawal code",
        True,
        "a later code at the GP",
    ),
    ChannelRule(Channel.ONLINE, "the person, online", True, "a later online change"),
    ChannelRule(Channel.LETTER, "the person, by letter", True, "a later letter"),
    ChannelRule(Channel.PHONE, "the person, by phone", True, "a later phone change"),
    ChannelRule(
        Channel.PROXY,
        "a parent (child under 13) or a recorded attorney",
        True,
        "a later change by a proxy",
    ),
)

COMBINATION = (
    "A choice is in force while the latest fact of any channel whose row says *holds: yes* "
    "has it on. Withdrawing through one channel never undoes a fact from another."
)

_RULE = {rule.channel: rule for rule in CHANNEL_RULES}
# The channels whose "on" keeps a choice in force (what the registry's SQL reads).
HOLDING_CHANNELS: tuple[str, ...] = tuple(
    rule.channel.value for rule in CHANNEL_RULES if rule.holds
)


class Fact(NamedTuple):
    """One recorded change of one choice through one channel, as the rule table reads it."""

    choice: Choice | str
    channel: Channel | str
    value: bool
    effective_at: datetime
    seq: int


class FactKey(NamedTuple):
    """Which channel fact: a choice and a channel (their stored values)."""

    choice: str
    channel: str


class LatestFact(NamedTuple):
    """A channel's latest fact for one choice: when it took effect, its recording order, and
    whether it turned the choice on."""

    effective_at: datetime
    seq: int
    value: bool


def in_force(latest: Mapping[Channel, bool]) -> bool:
    """Whether a choice is in force, from the latest fact of each channel that has one."""
    return any(value and _RULE[Channel(channel)].holds for channel, value in latest.items())


def latest_per_channel(facts: Iterable[Fact]) -> dict[FactKey, LatestFact]:
    """The latest fact per choice and channel: later time wins, ties to the later recording
    (``seq``)."""
    latest: dict[FactKey, LatestFact] = {}
    for fact in map(Fact._make, facts):  # plain 5-tuples are read as facts too
        key = FactKey(Choice(fact.choice).value, Channel(fact.channel).value)
        candidate = LatestFact(utc(fact.effective_at), fact.seq, bool(fact.value))
        held = latest.get(key)
        if held is None or (candidate.effective_at, candidate.seq) > (held.effective_at, held.seq):
            latest[key] = candidate
    return latest


def effective(facts: Iterable[Fact]) -> Choices:
    """The choices in force: the rule table applied to the latest fact of each channel."""
    per_choice: dict[str, dict[Channel, bool]] = {}
    for key, latest in latest_per_channel(facts).items():
        per_choice.setdefault(key.choice, {})[Channel(key.channel)] = latest.value
    return Choices(**{choice: in_force(held) for choice, held in per_choice.items()})


# --- documentation -----------------------------------------------------------------------------

DOC_BEGIN = "<!-- channel-table:begin (generated from confide.choices.channels.CHANNEL_RULES) -->"
DOC_END = "<!-- channel-table:end -->"


def channel_rules_markdown() -> str:
    """The channel table as Markdown, exactly as ``docs/choices-policy.md`` must carry it."""
    lines = [
        "| channel | whose voice | holds | its fact is changed only by |",
        "|---|---|---|---|",
    ]
    for rule in CHANNEL_RULES:
        holds = "yes" if rule.holds else "no"
        lines.append(f"| {rule.channel.value} | {rule.voice} | {holds} | {rule.changed_by} |")
    lines.append("")
    lines.append(COMBINATION)
    return "\n".join(lines)
