"""The registry on SQLite and PostgreSQL: history, current state, bulk, GP codes, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from confide.choices import store
from confide.choices.model import Actor, ChangeRequest, Channel, Choice, Choices, Proxy
from confide.choices.registry import ChoicesRegistry
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers

ADULT, CHILD = "9434765919", "9990000018"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def registry(opstore, tmp_path: Path):
    reg = ChoicesRegistry.open(Home.at(tmp_path / "home"))
    yield reg
    reg.close()


def snapshot(reg: ChoicesRegistry) -> dict[str, list]:
    """Every row of every table, to prove a refused change wrote nothing."""
    with reg.engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
            for t in store.metadata.sorted_tables
        }


def test_set_current_history(registry) -> None:
    seen = []
    registry.listeners.append(seen.append)
    event = registry.set(ADULT, {"no_research": True, "no_commercial": True}, "online")
    assert registry.current(ADULT) == Choices(no_research=True, no_commercial=True)
    registry.set("943 476 5919", {"no_research": False}, Channel.ONLINE)
    assert registry.current(ADULT) == Choices(no_commercial=True)
    history = registry.history(ADULT)
    assert [h.changes for h in history] == [
        {Choice.NO_RESEARCH: True, Choice.NO_COMMERCIAL: True},
        {Choice.NO_RESEARCH: False},
    ]
    assert [e.change_id for e in seen] == [h.change_id for h in history]
    assert seen[0] == event
    assert registry.current("9990000026") == Choices()  # never heard of: nothing held


def test_backdated_change_does_not_override_a_later_one(registry) -> None:
    registry.set(ADULT, {"share_nothing": True}, "online", at=T0 + timedelta(days=10))
    registry.set(ADULT, {"share_nothing": False}, "online", at=T0)  # arrives late, older
    assert registry.current(ADULT).share_nothing
    registry.set(ADULT, {"share_nothing": False}, "online", at=T0 + timedelta(days=10))  # tie
    assert not registry.current(ADULT).share_nothing  # same time: later recorded wins


# One shared registry per backend for the property test: each example uses a fresh person.
@pytest.fixture
def pool(registry):
    return iter(generate_test_numbers(5_000, np.random.default_rng(7)))


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(list(Choice)),
        st.booleans(),
        st.integers(min_value=0, max_value=5),  # few distinct times: plenty of ties
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=EVENTS, batched=st.booleans())
def test_current_equals_reference_fold(registry, pool, events, batched) -> None:
    person = next(pool)
    requests = [
        ChangeRequest(person, {c: v}, "online", at=T0 + timedelta(hours=h)) for c, v, h in events
    ]
    if batched:
        registry.bulk_set(requests)
    else:
        for request in requests:
            registry.bulk_set([request])
    expected: dict[str, tuple[int, int, bool]] = {}
    for order, (choice, value, hour) in enumerate(events):
        if choice.value not in expected or (hour, order) >= expected[choice.value][:2]:
            expected[choice.value] = (hour, order, value)
    want = Choices(**{c: v for c, (_h, _o, v) in expected.items()})
    assert registry.current(person) == want
    assert registry.derived_current(person) == want
    assert registry.current_many([person])[person] == want


def test_bulk_set_is_all_or_nothing(registry) -> None:
    registry.set(ADULT, {"no_planning": True}, "online")
    before = snapshot(registry)
    bad = [
        ChangeRequest("9990000026", {"no_research": True}, "online"),
        ChangeRequest("9990000027", {"no_research": True}, "online"),  # fails mod 11
    ]
    with pytest.raises(InvalidInput, match="Change 2: NHS number fails the modulus 11"):
        registry.bulk_set(bad)
    assert snapshot(registry) == before


@pytest.mark.parametrize(
    ("number", "changes", "channel", "actor", "message"),
    [
        ("943476591", {"no_research": True}, "online", "self", "10 digits"),
        ("9434765918", {"no_research": True}, "online", "self", "modulus 11"),
        ("94347659AB", {"no_research": True}, "online", "self", "only digits"),
        (ADULT, {"no_spam": True}, "online", "self", "Unknown choice"),
        (ADULT, {"no_research": "yes"}, "online", "self", "true or false"),
        (ADULT, {}, "online", "self", "No change"),
        (ADULT, {"no_research": True}, "pigeon", "self", "Unknown channel"),
        (ADULT, {"no_research": True}, "online", "neighbour", "Unknown actor"),
        (ADULT, {"no_research": True}, "gp_code", "self", "cannot arrive"),
    ],
)
def test_bad_input_changes_nothing(registry, number, changes, channel, actor, message) -> None:
    before = snapshot(registry)
    with pytest.raises(InvalidInput, match=message) as info:
        registry.set(number, changes, channel, actor)
    assert number not in info.value.message
    assert snapshot(registry) == before


def test_proxy_rules(registry) -> None:
    today = date.today()
    adult_dob = today.replace(year=today.year - 30)
    registry.enrol_demographics(
        [(ADULT, adult_dob, "LS1 4AP"), (CHILD, date(today.year - 5, 1, 1), "LS1 4AP")]
    )
    before = snapshot(registry)
    # A parent claiming the adult is a child: the date of birth on record wins.
    with pytest.raises(InvalidInput, match="13 or older"):
        registry.set(
            ADULT,
            {"no_research": True},
            "proxy",
            "parent",
            Proxy(Actor.PARENT, child_birth_date=date(today.year - 5, 1, 1)),
        )
    with pytest.raises(InvalidInput, match="No lasting power of attorney"):
        registry.set(
            ADULT,
            {"no_research": True},
            "proxy",
            "lpa",
            Proxy(Actor.LPA, lpa_reference="7000-1234-5678"),
        )
    with pytest.raises(InvalidInput, match="needs the proxy"):
        registry.set(ADULT, {"no_research": True}, "proxy", "lpa")
    assert snapshot(registry) == before

    event = registry.set(CHILD, {"no_research": True}, "proxy", "parent", Proxy(Actor.PARENT))
    assert event.proxy == {"kind": "parent", "basis": "child under 13"}
    registry.record_lpa(ADULT, "700012345678")
    event = registry.set(
        ADULT,
        {"no_research": True},
        "proxy",
        "lpa",
        Proxy(Actor.LPA, lpa_reference="7000 1234 5678"),
    )
    assert event.proxy["lpa_reference"] == "7000-1234-5678"
    registry.revoke_lpa(ADULT, "7000-1234-5678")
    with pytest.raises(InvalidInput, match="No lasting power"):
        registry.set(
            ADULT,
            {"no_research": False},
            "proxy",
            "lpa",
            Proxy(Actor.LPA, lpa_reference="700012345678"),
        )
    assert registry.current(ADULT).no_research


def test_gp_codes_are_idempotent_and_dated(registry) -> None:
    first = registry.apply_gp_code(ADULT, True, date(2024, 3, 1))
    assert first is not None and first.channel == Channel.GP_CODE and first.actor == Actor.GP
    assert registry.apply_gp_code(ADULT, True, date(2024, 3, 1)) is None  # resubmitted
    assert registry.shares_nothing([ADULT, "9990000026"]) == [True, False]
    registry.apply_gp_code(ADULT, False, date(2024, 6, 1))  # withdrawn later
    assert not registry.current(ADULT).share_nothing
    assert len(registry.history(ADULT)) == 2


def test_a_gp_withdrawal_leaves_an_online_share_nothing_in_force(registry) -> None:
    """The bug this store was rebuilt for: one flag, latest date wins, let a GP's type 1
    withdrawal switch the flow back on for someone who chose online to share nothing."""
    registry.apply_gp_code(ADULT, True, date(2024, 1, 1))
    registry.set(ADULT, {"share_nothing": True}, "online", at=T0 + timedelta(days=30))
    registry.apply_gp_code(ADULT, False, date(2024, 6, 1))  # the GP withdraws type 1, later
    assert registry.current(ADULT).share_nothing
    assert registry.shares_nothing([ADULT]) == [True]
    assert int(ADULT) in set(registry.holders([Choice.SHARE_NOTHING]))
    assert registry.facts(ADULT)[Choice.SHARE_NOTHING] == {
        Channel.GP_CODE: False,
        Channel.ONLINE: True,
    }
    registry.set(ADULT, {"share_nothing": False}, "online")  # only the person's own channel
    assert not registry.current(ADULT).share_nothing


@pytest.mark.parametrize(
    ("first", "then"),
    [("online", "letter"), ("letter", "online"), ("proxy", "online"), ("online", "phone")],
)
def test_withdrawing_through_one_channel_never_undoes_another(registry, first, then) -> None:
    actor = {"proxy": ("lpa", Proxy(Actor.LPA, lpa_reference="700012345678"))}
    registry.record_lpa(ADULT, "7000-1234-5678")

    def change(channel: str, value: bool, day: int) -> None:
        who, proxy = actor.get(channel, ("self", None))
        registry.set(ADULT, {"no_research": value}, channel, who, proxy, T0 + timedelta(days=day))

    change(first, True, 1)
    change(then, False, 2)  # a later withdrawal through another channel
    assert registry.current(ADULT).no_research
    change(first, False, 3)
    assert not registry.current(ADULT).no_research


def test_holders_and_events_since(registry) -> None:
    numbers = list(generate_test_numbers(50, np.random.default_rng(1)))
    registry.bulk_set(ChangeRequest(n, {"no_research": True}, "letter") for n in numbers[:20])
    registry.bulk_set(ChangeRequest(n, {"share_nothing": True}, "letter") for n in numbers[10:30])
    held = registry.holders([Choice.NO_RESEARCH, Choice.SHARE_NOTHING])
    assert held.dtype == np.int64 and list(held) == sorted(int(n) for n in numbers[:30])
    assert len(registry.events_since(0)) == 40
    assert len(registry.events_since(registry.events_since(0)[-1].seq)) == 0
    with registry.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.people)).scalar_one() == 30
