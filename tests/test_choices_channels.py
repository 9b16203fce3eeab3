"""Each channel keeps its own facts: the GP's type 1 code and its withdrawal, online, letter,
phone and proxy changes never undo one another; the choice in force is the channel rule table
applied to the latest fact of each channel (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from confide.choices import channels, store
from confide.choices.model import Actor, ChangeRequest, Channel, Choice, Choices, Proxy
from confide.choices.registry import ChoicesRegistry
from confide.common import opstore as opstore_module
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DOC = Path(__file__).resolve().parent.parent / "docs" / "choices-policy.md"
LPA = "7000-1234-5678"


@pytest.fixture
def registry(opstore, tmp_path: Path):
    reg = ChoicesRegistry.open(Home.at(tmp_path / "home"))
    yield reg
    reg.close()


@pytest.fixture
def pool(registry):
    return iter(generate_test_numbers(5_000, np.random.default_rng(11)))


FACTS = st.lists(
    st.tuples(
        st.sampled_from(list(Channel)),
        st.sampled_from([Choice.SHARE_NOTHING, Choice.SHARE_NOTHING, Choice.NO_RESEARCH]),
        st.booleans(),
        st.integers(min_value=0, max_value=4),  # few distinct days: plenty of ties
    ),
    min_size=1,
    max_size=14,
)


def _record(registry: ChoicesRegistry, person: str, channel, choice, value, day) -> None:
    at = T0 + timedelta(days=day)
    if channel == Channel.GP_CODE:
        # A GP code only ever carries share_nothing (type 1).
        registry.apply_gp_code(person, value, at)
    elif channel == Channel.PROXY:
        proxy = Proxy(Actor.LPA, lpa_reference=LPA)
        registry.bulk_set([ChangeRequest(person, {choice: value}, channel, Actor.LPA, proxy, at)])
    else:
        registry.bulk_set([ChangeRequest(person, {choice: value}, channel, Actor.SELF, None, at)])


def _oracle(facts) -> tuple[Choices, dict[tuple[Choice, Channel], bool]]:
    """Written apart from the code under test: the latest fact per (choice, channel), later
    day wins and ties go to the later arrival; a GP code seen before (same value and day) adds
    nothing; a choice is in force when any channel's latest fact has it on."""
    latest: dict[tuple[Choice, Channel], tuple[int, int, bool]] = {}
    gp_seen: set[tuple[bool, int]] = set()
    for order, (channel, choice, value, day) in enumerate(facts):
        if channel == Channel.GP_CODE:
            choice = Choice.SHARE_NOTHING
            if (value, day) in gp_seen:
                continue
            gp_seen.add((value, day))
        key = (choice, channel)
        if key not in latest or (day, order) >= latest[key][:2]:
            latest[key] = (day, order, value)
    values = {k: v for k, (_d, _o, v) in latest.items()}
    held = {c.value for (c, _ch), v in values.items() if v}
    return Choices(**{c: True for c in held}), values


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(facts=FACTS)
def test_choice_in_force_is_the_rule_over_each_channels_latest_fact(registry, pool, facts):
    person = next(pool)
    registry.record_lpa(person, LPA)
    for channel, choice, value, day in facts:
        _record(registry, person, channel, choice, value, day)
    want, latest = _oracle(facts)
    assert registry.current(person) == want
    assert registry.derived_current(person) == want
    assert registry.shares_nothing([person]) == [want.share_nothing]
    assert (int(person) in set(registry.holders([Choice.SHARE_NOTHING]))) == want.share_nothing
    # The promise in the words: a GP's type 1 withdrawal never re-enables data flow
    # that an online share-nothing stopped.
    if latest.get((Choice.SHARE_NOTHING, Channel.ONLINE)):
        assert registry.current(person).share_nothing
    facts_now = registry.facts(person)
    for (choice, channel), value in latest.items():
        assert facts_now[choice][channel] is value


def test_the_rule_reads_the_table() -> None:
    assert channels.in_force({Channel.GP_CODE: False, Channel.ONLINE: True})
    assert not channels.in_force({Channel.GP_CODE: False, Channel.ONLINE: False})
    assert not channels.in_force({})
    assert {r.channel for r in channels.CHANNEL_RULES} == set(Channel)
    assert set(channels.HOLDING_CHANNELS) == {r.channel.value for r in channels.CHANNEL_RULES}


def test_docs_carry_the_channel_table_exactly() -> None:
    text = DOC.read_text()
    begin, end = text.index(channels.DOC_BEGIN), text.index(channels.DOC_END)
    assert text[begin + len(channels.DOC_BEGIN) : end].strip() == channels.channel_rules_markdown()


def test_migration_rebuilds_facts_per_channel_from_history(opstore, tmp_path: Path) -> None:
    """A store written before channels were kept apart: upgrading rebuilds the index from the
    history, so a GP withdrawal recorded after an online share-nothing no longer cancels it."""
    folder = tmp_path / "choices"
    folder.mkdir()
    engine = opstore_module.make_engine("choices", folder)
    script = Path(opstore_module.__file__).resolve().parent.parent / "choices" / "migrations"
    config = Config()
    config.set_main_option("script_location", str(script))
    config.attributes.update(
        engine=engine,
        schema=None if engine.dialect.name == "sqlite" else opstore_module.schema_for("choices"),
        party="choices",
    )
    command.upgrade(config, "0002")
    person = "9434765919"
    rows = [
        ("share_nothing", True, "online", "self", 1),
        ("share_nothing", False, "gp_code", "gp", 2),
        ("no_research", True, "letter", "self", 1),
        ("no_research", False, "letter", "self", 3),
    ]
    with engine.begin() as conn:
        pid = store.person_ids(conn, [person], create=True)[person]
        for i, (choice, value, channel, actor, day) in enumerate(rows, start=1):
            conn.execute(
                insert(store.choice_events).values(
                    seq=i,
                    change_id=f"c{i}",
                    person_id=pid,
                    choice=choice,
                    value=value,
                    effective_at=T0 + timedelta(days=day),
                    recorded_at=T0,
                    channel=channel,
                    actor=actor,
                    proxy=None,
                )
            )
    command.upgrade(config, "head")
    registry = ChoicesRegistry(engine)
    try:
        assert registry.current(person) == Choices(share_nothing=True)
        with engine.connect() as conn:
            state = conn.execute(
                select(store.choice_state.c.choice, store.choice_state.c.channel)
            ).all()
        assert sorted(state) == [
            ("no_research", "letter"),
            ("share_nothing", "gp_code"),
            ("share_nothing", "online"),
        ]
        command.downgrade(config, "0002")
        command.upgrade(config, "head")
        assert registry.current(person) == Choices(share_nothing=True)
    finally:
        engine.dispose()
