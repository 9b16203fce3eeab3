"""Staff sign-in (the access party's ``StaffSignIn``) on SQLite and PostgreSQL: codes are
single-use and short-lived, unknown emails get the same answer, limits hold, sessions end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from confide.access.model import Role
from confide.access.service import Access
from confide.access.signin import (
    NotSignedIn,
    SignInConfig,
    StaffSignIn,
    TooManySignIns,
)
from confide.access.signin_store import staff_sessions
from confide.common.errors import InvalidInput
from confide.common.home import Home


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


class Sent:
    def __init__(self) -> None:
        self.codes: list[tuple[str | None, str]] = []

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None:
        self.codes.append((contact, code))


@pytest.fixture
def parts(opstore, tmp_path):
    home = Home.at(tmp_path / "home")
    clock = Clock()
    access = Access.open(home, clock=clock)
    access.create_organisation("Uni of Example", "academic", slug="uni")
    access.create_organisation("Committee", "nhs", slug="dac", approving_body=True)
    access.add_person("uni", "A Researcher", "a@uni.example", [Role.APPLICANT])
    access.add_person("dac", "A Researcher", "a@uni.example", [Role.OUTPUT_CHECKER])
    access.add_person("dac", "An Approver", "b@dac.example", [Role.APPROVER])
    sent = Sent()
    config = SignInConfig(min_seconds=0, email_starts=3, client_starts=50, failures=5)
    signin = StaffSignIn.open(access, home.party("access"), sender=sent, config=config)
    yield signin, sent, clock, access
    access.close()


def _signed_in(signin: StaffSignIn, sent: Sent, email: str) -> str:
    challenge = signin.start(email, "client")
    return signin.verify(challenge.challenge_id, sent.codes[-1][1], "client")


def test_a_code_works_once_and_binds_a_single_organisation(parts):
    signin, sent, _, _ = parts
    challenge = signin.start(" B@DAC.example ", "client")
    assert sent.codes[-1][0] == "b@dac.example" and len(sent.codes[-1][1]) == 6
    token = signin.verify(challenge.challenge_id, sent.codes[-1][1], "client")
    who = signin.principal(token)
    assert who.organisation == "dac" and who.roles == {Role.APPROVER} and who.approving_body
    with pytest.raises(NotSignedIn):
        signin.verify(challenge.challenge_id, sent.codes[-1][1], "client")
    signin.end(token)
    with pytest.raises(NotSignedIn):
        signin.principal(token)


def test_unknown_email_gets_the_same_answer_and_no_code(parts):
    signin, sent, _, _ = parts
    known = signin.start("b@dac.example", "client")
    unknown = signin.start("nobody@dac.example", "client")
    assert known.message == unknown.message and len(sent.codes) == 1
    for code in (f"{n:06d}" for n in range(3)):
        with pytest.raises(NotSignedIn):
            signin.verify(unknown.challenge_id, code, "client")


def test_codes_expire_die_after_three_wrong_tries_and_failures_lock(parts):
    signin, sent, clock, _ = parts
    challenge = signin.start("b@dac.example", "client")
    code = sent.codes[-1][1]
    clock.at += timedelta(minutes=11)
    with pytest.raises(NotSignedIn):
        signin.verify(challenge.challenge_id, code, "client")
    challenge = signin.start("b@dac.example", "other-client")
    code = sent.codes[-1][1]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        with pytest.raises(NotSignedIn):
            signin.verify(challenge.challenge_id, wrong, "other-client")
    with pytest.raises(NotSignedIn, match="not right"):
        signin.verify(challenge.challenge_id, code, "other-client")
    with pytest.raises(NotSignedIn):  # the fifth failure from this address
        signin.verify(challenge.challenge_id, wrong, "other-client")
    with pytest.raises(TooManySignIns):  # this address now waits a while
        signin.verify(challenge.challenge_id, wrong, "other-client")
    # Six failures on this email: another address is held a moment, never refused.
    held = signin.begin_start("b@dac.example", "third-client")
    assert held.error is None and 0 < held.delay <= signin.config.hold_cap


def test_limits_lock_known_and_unknown_emails_alike(parts):
    signin, _, clock, _ = parts
    for email in ("b@dac.example", "nobody@dac.example"):
        for _ in range(3):
            signin.start(email, "client")
        with pytest.raises(TooManySignIns):
            signin.start(email, "client")
    clock.at += timedelta(minutes=16)
    signin.start("b@dac.example", "client")


def test_someone_in_two_organisations_chooses_one(parts):
    signin, sent, _, access = parts
    token = _signed_in(signin, sent, "a@uni.example")
    assert signin.principal(token) is None  # not yet chosen
    assert {m.organisation.slug for m in signin.memberships(token)} == {"uni", "dac"}
    with pytest.raises(InvalidInput):
        signin.choose(token, "elsewhere")
    signin.choose(token, "uni")
    assert signin.principal(token).roles == {Role.APPLICANT}
    signin.choose(token, "dac")
    assert signin.principal(token).roles == {Role.OUTPUT_CHECKER}
    access.revoke_role("dac", "a@uni.example", Role.OUTPUT_CHECKER)
    assert signin.principal(token).roles == frozenset()  # read again on every request


def test_sessions_expire_and_tokens_are_not_stored(parts):
    signin, sent, clock, access = parts
    token = _signed_in(signin, sent, "b@dac.example")
    with access.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(select(staff_sessions)) for v in row)
    assert token not in stored
    clock.at += timedelta(hours=9)
    with pytest.raises(NotSignedIn):
        signin.principal(token)
    with pytest.raises(InvalidInput):
        signin.start("not an email", "client")
