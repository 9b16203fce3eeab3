"""Online identity checks: the happy path, and abuse that must be stopped without leaking."""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from confide.choices.identity import (
    IdentityConfig,
    IdentityService,
    NotVerified,
    OutboxNotifier,
    TooManyAttempts,
    mask,
)
from confide.choices.registry import ChoicesRegistry
from confide.common.errors import InvalidInput
from confide.common.home import Home

KNOWN, UNKNOWN = "9434765919", "9990000018"
DOB = "1980-05-17"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def setup(opstore, tmp_path: Path):
    home = Home.at(tmp_path / "home")
    registry = ChoicesRegistry.open(home)
    registry.enrol_demographics(
        [(KNOWN, date(1980, 5, 17), "ls14ap", "B82001", None, "jo@example.org")]
    )
    clock = Clock()
    service = IdentityService.open(
        registry, home.root, config=IdentityConfig(min_seconds=0.0), now=clock
    )
    yield service, clock, home.root / "outbox"
    registry.close()


def _sent_code(outbox: Path) -> str:
    messages = sorted(outbox.glob("*.json"))
    assert messages, "no code was sent"
    message = json.loads(messages[-1].read_text())
    assert message["to"] == "j***@example.org"  # masked destination only
    return message["code"]


def test_happy_path_gives_a_session(setup) -> None:
    service, clock, outbox = setup
    started = service.start("943 476 5919", DOB, "LS1 4AP", "203.0.113.1")
    session = service.verify(started.challenge_id, _sent_code(outbox), "203.0.113.1")
    assert service.person(session.token) == KNOWN
    assert KNOWN not in session.token
    with pytest.raises(NotVerified):  # single use
        service.verify(started.challenge_id, _sent_code(outbox), "203.0.113.1")
    clock.now += timedelta(minutes=16)
    with pytest.raises(NotVerified):  # sessions are short-lived
        service.person(session.token)


def test_tampered_token_and_expired_code_are_refused(setup) -> None:
    service, clock, outbox = setup
    started = service.start(KNOWN, DOB, "LS1 4AP", "c1")
    session = service.verify(started.challenge_id, _sent_code(outbox), "c1")
    token = session.token
    middle = len(token) // 2
    tampered = token[:middle] + ("B" if token[middle] != "B" else "C") + token[middle + 1 :]
    with pytest.raises(NotVerified):
        service.person(tampered)
    service.end(session.token)
    with pytest.raises(NotVerified):
        service.person(session.token)
    started = service.start(KNOWN, DOB, "LS1 4AP", "c1")
    clock.now += timedelta(minutes=11)
    with pytest.raises(NotVerified):
        service.verify(started.challenge_id, _sent_code(outbox), "c1")


def test_unknown_and_known_numbers_answer_identically(setup) -> None:
    service, _clock, outbox = setup
    known = service.start(KNOWN, "1980-05-18", "LS1 4AP", "c2")  # wrong date of birth
    unknown = service.start(UNKNOWN, DOB, "LS1 4AP", "c3")
    matched = service.start(KNOWN, DOB, "LS1 4AP", "c4")
    assert known.message == unknown.message == matched.message
    assert known.expires_in == unknown.expires_in == matched.expires_in
    assert len(known.challenge_id) == len(unknown.challenge_id) == len(matched.challenge_id)
    assert len(list(outbox.glob("*.json"))) == 1  # only the real match was sent anything
    errors = []
    for challenge in (known, unknown):
        with pytest.raises(NotVerified) as info:
            service.verify(challenge.challenge_id, "123456", "c5")
        errors.append(info.value.as_dict())
    assert errors[0] == errors[1]


def test_timing_is_padded_to_the_same_floor(setup) -> None:
    service, _clock, _outbox = setup
    service.config = IdentityConfig(min_seconds=0.05, person_starts=100, client_starts=100)

    def timed(number: str, client: str) -> float:
        began = time.perf_counter()
        service.start(number, DOB, "LS1 4AP", client)
        return time.perf_counter() - began

    known = [timed(KNOWN, f"k{i}") for i in range(5)]
    unknown = [timed(UNKNOWN, f"u{i}") for i in range(5)]
    assert min(known + unknown) >= 0.05
    assert abs(statistics.median(known) - statistics.median(unknown)) < 0.03


def test_guessing_dates_of_birth_from_many_addresses_is_slowed_not_locked(setup) -> None:
    service, _clock, outbox = setup
    holds = {}
    for number in (KNOWN, UNKNOWN):
        waits = []
        for day in range(1, 9):  # eight guesses, each from a new address
            paced = service.begin_start(number, f"1980-05-{day:02d}", "LS1 4AP", f"bot{day}")
            assert paced.error is None  # never refused: held, longer and longer
            waits.append(paced.delay)
        holds[number] = [round(w, 1) for w in waits]
        assert waits[:5] == [0.0] * 5 and waits[5] > 0.3
        assert waits[5] < waits[6] < waits[7] <= service.config.hold_cap
    assert holds[KNOWN] == holds[UNKNOWN]  # a known number is throttled as an unknown one
    assert not list(outbox.glob("*.json"))
    # The real person, from their own address, still gets a code: held, never refused.
    paced = service.begin_start(KNOWN, DOB, "LS1 4AP", "home")
    assert paced.error is None and paced.delay <= service.config.hold_cap
    assert service.person(
        service.verify(paced.value.challenge_id, _sent_code(outbox), "home").token
    )


def test_one_client_cannot_sweep_many_numbers(setup) -> None:
    service, _clock, _outbox = setup
    import numpy as np

    from confide.common.nhs_number import generate_test_numbers

    for number in generate_test_numbers(20, np.random.default_rng(3)):
        service.start(str(number), DOB, "LS1 4AP", "sweeper")
    with pytest.raises(TooManyAttempts):
        service.start(KNOWN, DOB, "LS1 4AP", "sweeper")


def test_wrong_codes_kill_the_code_slow_the_address_and_never_lock_the_person(setup) -> None:
    service, clock, outbox = setup
    started = service.start(KNOWN, DOB, "LS1 4AP", "c6")
    code = _sent_code(outbox)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        with pytest.raises(NotVerified):
            service.verify(started.challenge_id, wrong, "c6")
    with pytest.raises(NotVerified):  # three wrong tries kill the code, even the right one
        service.verify(started.challenge_id, code, "c6")
    started = service.start(KNOWN, DOB, "LS1 4AP", "c6")
    with pytest.raises(NotVerified):  # the fifth failure from this address
        service.verify(started.challenge_id, wrong, "c6")
    with pytest.raises(TooManyAttempts) as refused:  # this address is now refused a while
        service.verify(started.challenge_id, code, "c6")
    assert refused.value.retry_after >= 1
    # Five failures on this person: another address is held a moment, not refused.
    started = service.begin_start(KNOWN, DOB, "LS1 4AP", "c8")
    assert started.error is None and 0 < started.delay <= service.config.hold_cap
    verified = service.begin_verify(started.value.challenge_id, _sent_code(outbox), "c8")
    assert verified.error is None and service.person(verified.value.token)
    clock.now += timedelta(minutes=16)  # the window passes: the first address may try again
    started = service.start(KNOWN, DOB, "LS1 4AP", "c6")
    assert service.person(service.verify(started.challenge_id, _sent_code(outbox), "c6").token)


def test_bad_details_are_clear_errors_without_echo(setup) -> None:
    service, _clock, _outbox = setup
    for args, message in (
        (("9434765918", DOB, "LS1 4AP"), "modulus 11"),
        ((KNOWN, "17/05/1980", "LS1 4AP"), "YYYY-MM-DD"),
        ((KNOWN, DOB, "NOT A CODE"), "postcode"),
    ):
        with pytest.raises(InvalidInput, match=message) as info:
            service.start(*args, "c9")
        assert args[0] not in info.value.message and "1980" not in info.value.message


def test_masking() -> None:
    assert mask("07700 900123") == "phone ending 123"
    assert mask(None).startswith("the contact details")
    notifier = OutboxNotifier(Path("/nonexistent-never-used"))
    assert notifier.folder.name == "nonexistent-never-used"
