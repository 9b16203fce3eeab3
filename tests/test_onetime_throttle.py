"""The shared one-time codes and throttle, attacked through both journeys (patients, staff).

Judged by what an attacker can do to someone else: rotating addresses must never lock a
chosen person out (they are at most held a few seconds), while guessing is still slowed
(refusals that double for one address, holds that grow for many).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.access.model import Role
from confide.access.service import Access
from confide.access.signin import SignInConfig, StaffSignIn
from confide.choices.identity import IdentityConfig, IdentityService
from confide.choices.registry import ChoicesRegistry
from confide.common.errors import ConfideError
from confide.common.home import Home
from confide.common.onetime import Paced
from confide.common.throttle import Kind, Limits, Rule, Scope

NUMBER, DOB, POSTCODE = "9434765919", "1980-05-17", "LS1 4AP"
EMAIL = "b@dac.example"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Codes:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None:
        self.sent.append(code)


@dataclass
class Journey:
    """One of the two sign-in journeys, driven the same way."""

    name: str
    start: Any  # (client, right: bool) -> Paced
    verify: Any  # (challenge_id, code, client) -> Paced
    codes: Codes
    clock: Clock
    hold_cap: float

    def challenge(self, paced: Paced[Any]) -> str:
        return paced.value.challenge_id


@pytest.fixture(params=["patient", "staff"])
def journey(request, opstore, tmp_path: Path):
    home = Home.at(tmp_path / "home")
    clock, codes = Clock(), Codes()
    if request.param == "patient":
        registry = ChoicesRegistry.open(home)
        registry.enrol_demographics([(NUMBER, date(1980, 5, 17), "ls14ap", "B82001", None, "x")])
        config = IdentityConfig(min_seconds=0)
        service = IdentityService.open(
            registry, home.root, notifier=codes, config=config, now=clock
        )

        def start(client: str, right: bool = True) -> Paced[Any]:
            birth = DOB if right else "1980-05-18"
            return service.begin_start(NUMBER, birth, POSTCODE, client)

        yield Journey("patient", start, service.begin_verify, codes, clock, config.hold_cap)
        registry.close()
    else:
        access = Access.open(home, clock=clock)
        access.create_organisation("Committee", "nhs", slug="dac", approving_body=True)
        access.add_person("dac", "An Approver", EMAIL, [Role.APPROVER])
        config = SignInConfig(min_seconds=0)
        signin = StaffSignIn.open(access, home.party("access"), sender=codes, config=config)

        def start(client: str, right: bool = True) -> Paced[Any]:
            return signin.begin_start(EMAIL if right else "b@dac.example.org", client)

        def verify(challenge: str, code: str, client: str) -> Paced[Any]:
            return signin.begin_verify(challenge, code, client)

        yield Journey("staff", start, verify, codes, clock, config.hold_cap)
        access.close()


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_rotating_addresses_cannot_lock_a_chosen_person_out(journey) -> None:
    # An attacker who knows the person's details asks for codes and guesses them from 60
    # addresses, three wrong codes per challenge: 60 starts and 180 failures on one person.
    for bot in range(60):
        started = journey.start(f"bot-{bot}")
        assert started.error is None, "a start on someone else's behalf was refused"
        for _ in range(3):
            guess = journey.verify(journey.challenge(started), "000000", f"bot-{bot}")
            assert guess.error is not None and "not right" in guess.error.message
    # The person, from home, is held no longer than the cap, gets a code and signs in.
    mine = journey.start("home")
    assert mine.error is None and mine.delay <= journey.hold_cap
    signed = journey.verify(journey.challenge(mine), journey.codes.sent[-1], "home")
    assert signed.error is None and signed.delay <= journey.hold_cap


def test_one_address_guessing_is_refused_for_longer_and_longer(journey) -> None:
    started = journey.start("attacker")
    retries = []
    for _ in range(12):
        guess = journey.verify(journey.challenge(started), "000000", "attacker")
        if "Too many" in guess.error.message:
            retries.append(guess.error.retry_after)
            journey.clock.now += timedelta(seconds=guess.error.retry_after)  # waits it out
            started = journey.start("attacker")
    assert len(retries) >= 3
    assert all(b >= 2 * a - 1 for a, b in itertools.pairwise(retries)), retries
    # Meanwhile the same person from elsewhere is never refused.
    assert journey.start("home").error is None


def test_many_addresses_guessing_are_each_held_longer(journey) -> None:
    delays = []
    for bot in range(12):
        started = journey.start(f"bot-{bot}", right=False)
        assert started.error is None
        delays.append(started.delay)
    assert delays[:5] == [0.0] * 5  # the person's first few tries are never slowed
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == journey.hold_cap  # an attacker with many addresses waits the cap
    # Over the window, a guesser on one person gets at most one answer per hold per
    # connection; each challenge allows 3 guesses at a 6-digit code.
    assert delays[6] > delays[5] > 0


def test_a_code_works_once_even_for_the_right_person(journey) -> None:
    started = journey.start("home")
    code = journey.codes.sent[-1]
    assert journey.verify(journey.challenge(started), code, "home").error is None
    again = journey.verify(journey.challenge(started), code, "home")
    assert again.error is not None and "already been used" in again.error.message
    # The throttle's refusal names no person and no address.
    for bot in range(30):
        journey.start("sweeper", right=bool(bot % 2))
    refused = journey.start("sweeper")
    assert isinstance(refused.error, ConfideError) and "Too many" in refused.error.message
    assert NUMBER not in refused.error.message and EMAIL not in refused.error.message


@given(
    free=st.integers(0, 50),
    base=st.floats(0.01, 10),
    cap=st.floats(0.1, 3600),
    attempts=st.integers(0, 10_000),
)
def test_delays_never_shrink_and_never_pass_the_cap(free, base, cap, attempts) -> None:
    rule = Rule(Scope.SUBJECT, Kind.FAIL, free, base, cap, refuse=False)
    assert 0 <= rule.delay(attempts) <= rule.delay(attempts + 1) <= cap
    assert rule.delay(attempts) == 0 or attempts >= free


def test_subject_rules_hold_and_never_refuse() -> None:
    for rule in Limits().rules():
        assert rule.refuse == (rule.scope is not Scope.SUBJECT)
        if rule.scope is Scope.SUBJECT:
            assert rule.cap <= 10  # nobody can make a person wait longer than this
