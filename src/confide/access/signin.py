"""People (not programs) signing in to the staff consoles: an emailed one-time code, a session.

Built on the same one-time codes as the patients' identity check, so a stranger learns
nothing and can guess nothing:

- ``start`` answers the same way, in about the same time, whether or not the email belongs to
  a person holding a role. For an unknown email a decoy challenge is made that no code can
  open; nothing is sent.
- Codes and throttling are the shared ``confide.common.onetime`` (the patients' check uses the
  same): every attempt counts against the client, the email (as an HMAC) and the pair. A client
  over its allowance is refused for a growing delay; attempts on a busy email are held a few
  seconds at most, never refused, so nobody can lock a colleague out.
- Codes are 6 digits, kept only as an HMAC under a key in the access folder, expire (default
  10 minutes), die after 3 wrong tries and work once.
- A session is a random token the browser holds; the store keeps only its SHA-256 digest, the
  person and the one organisation they act for (chosen when they belong to several). Roles
  are read again on every request, so taking a role away takes effect at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.engine import Row

from confide.access import store as tables
from confide.access.directory import organisation_from_row, roles_held
from confide.access.errors import Unauthenticated
from confide.access.model import Organisation, Principal, Role
from confide.access.service import Access
from confide.access.signin_store import staff_attempts, staff_challenges, staff_sessions
from confide.common import exit_codes
from confide.common.clock import as_utc
from confide.common.errors import ConfideError, InvalidInput
from confide.common.onetime import CodeRules, OneTimeCodes, Paced, paced
from confide.common.secrets import load_or_create
from confide.common.throttle import Limits

GENERIC_START = (
    "If that email address belongs to someone with a role in Confide, we have sent it a "
    "6-digit code. It expires in {minutes} minutes."
)
EMAIL_MAX = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")  # the access party's own test


class TooManySignIns(ConfideError):
    """Locked out for a while: the same answer for every email, known or not."""

    exit_code = exit_codes.LOCKED_OUT
    retry_after: int = 0


class NotSignedIn(Unauthenticated):
    """A code or session that does not open (wrong, expired, used or unknown: not said which)."""


def _too_many(retry_after: float) -> TooManySignIns:
    seconds = max(1, int(retry_after + 0.999))
    wait = f"{seconds} seconds" if seconds < 90 else f"{(seconds + 59) // 60} minutes"
    error = TooManySignIns(
        "Too many attempts to sign in from here. For security, please wait and try again later.",
        hint=f"Try again in {wait}.",
    )
    error.retry_after = seconds
    return error


def _not_signed_in() -> NotSignedIn:
    return NotSignedIn(
        "That code is not right, or it has expired or already been used.",
        hint="Check the code in your email, or sign in again to get a new one.",
    )


class CodeSender(Protocol):
    """Sends a one-time code to an email address (the outbox notifier in the demo)."""

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None: ...


@dataclass(frozen=True)
class SignInConfig:
    code_ttl: timedelta = timedelta(minutes=10)
    session_ttl: timedelta = timedelta(hours=8)
    window: timedelta = timedelta(minutes=15)
    email_starts: int = 5
    client_starts: int = 20
    failures: int = 5
    tries_per_code: int = 3
    min_seconds: float = 0.25  # every start takes at least this long, known email or not
    hold_cap: float = 8.0  # the longest a stranger can make a real person wait, in seconds

    def code_rules(self) -> CodeRules:
        limits = Limits(
            window=self.window,
            subject_starts=self.email_starts,
            client_starts=self.client_starts,
            failures=self.failures,
            hold_cap=self.hold_cap,
        )
        return CodeRules(self.code_ttl, self.tries_per_code, limits)


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    message: str


@dataclass(frozen=True)
class Membership:
    """One organisation a signed-in person may act for, with their roles there."""

    organisation: Organisation
    roles: frozenset[Role]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(raw: str) -> str:
    """An email address as stored by the access party, or InvalidInput."""
    address = str(raw).strip().lower()
    if len(address) > EMAIL_MAX or not _EMAIL.match(address):
        raise InvalidInput("Enter an email address, like name@example.org.")
    return address


class StaffSignIn:
    """Start and finish a sign-in; choose an organisation; turn a session into a Principal."""

    def __init__(
        self,
        access: Access,
        key: bytes,
        *,
        sender: CodeSender | None = None,
        config: SignInConfig | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.access = access
        self.engine = access.engine
        self._key = key
        self.sender = sender
        self._now = now or access._now
        self.config = config or SignInConfig()

    @property
    def config(self) -> SignInConfig:
        return self._config

    @config.setter
    def config(self, config: SignInConfig) -> None:
        self._config = config
        self.codes = OneTimeCodes(
            self._key,
            staff_challenges,
            staff_attempts,
            config.code_rules(),
            too_many=_too_many,
            not_verified=_not_signed_in,
        )

    @classmethod
    def open(cls, access: Access, folder: Path, **options: Any) -> StaffSignIn:
        """The service with its code key in ``folder`` (the access party's folder)."""
        key = load_or_create(folder / "signin.key", lambda: secrets.token_bytes(32))
        return cls(access, key, **options)

    # --- signing in -------------------------------------------------------------------------

    def start(self, email: str, client: str) -> Challenge:
        """Send a code if the email belongs to someone with a role; the answer never says.
        Blocks this thread for the floor and any throttle hold (the web uses ``begin_start``)."""
        return self.begin_start(email, client).settle()

    def begin_start(self, email: str, client: str) -> Paced[Challenge]:
        """``start`` without the wait: the answer and when it may be given."""
        return paced(
            lambda: self._start(normal_email(email), client), floor=self.config.min_seconds
        )

    def _person_with_roles(self, conn: Connection, email: str) -> str | None:
        row = conn.execute(
            select(tables.people.c.id)
            .join(tables.memberships, tables.memberships.c.person_id == tables.people.c.id)
            .where(tables.people.c.email == email)
            .limit(1)
        ).first()
        return row.id if row else None

    def _start(self, email: str, client: str) -> tuple[Challenge, float]:
        now = self._now()
        with self.engine.begin() as conn:
            person_id = self._person_with_roles(conn, email)
            issued = self.codes.issue(conn, self.codes.mac("e", email), client, person_id, now)
        if issued.code is not None and self.sender is not None:
            self.sender.send(email, issued.code, issued.expires_at)
        minutes = int(self.config.code_ttl.total_seconds() // 60)
        return Challenge(issued.challenge_id, GENERIC_START.format(minutes=minutes)), issued.hold

    def verify(self, challenge_id: str, code: str, client: str) -> str:
        """Exchange a correct, fresh, unused code for a session token (shown only this once)."""
        return self.begin_verify(challenge_id, code, client).settle()

    def begin_verify(self, challenge_id: str, code: str, client: str) -> Paced[str]:
        """``verify`` without the wait."""
        now = self._now()
        token = secrets.token_urlsafe(32)

        def open_session(conn: Connection, row: Row[Any]) -> str:
            orgs = self._organisations(conn, row.person_id)
            conn.execute(delete(staff_sessions).where(staff_sessions.c.expires_at < now))
            conn.execute(
                insert(staff_sessions).values(
                    token_hash=_digest(token),
                    person_id=row.person_id,
                    organisation_id=orgs[0].organisation.id if len(orgs) == 1 else None,
                    created_at=now,
                    expires_at=now + self.config.session_ttl,
                )
            )
            return token

        return self.codes.redeem(self.engine, challenge_id, code, client, now, open_session)

    # --- sessions ---------------------------------------------------------------------------

    def _session(self, conn: Connection, token: str | None) -> tuple[str, str | None]:
        if not isinstance(token, str) or not token or len(token) > 100:
            raise self._ended()
        row = conn.execute(
            select(staff_sessions).where(staff_sessions.c.token_hash == _digest(token))
        ).first()
        if row is None or as_utc(row.expires_at) <= self._now():
            raise self._ended()
        return row.person_id, row.organisation_id

    @staticmethod
    def _ended() -> NotSignedIn:
        return NotSignedIn(
            "You are not signed in, or your session has ended.",
            hint="Sign in again with your email address.",
        )

    @staticmethod
    def _organisations(conn: Connection, person_id: str) -> list[Membership]:
        rows = conn.execute(
            select(tables.organisations, tables.memberships.c.role)
            .join(
                tables.memberships,
                tables.memberships.c.organisation_id == tables.organisations.c.id,
            )
            .where(tables.memberships.c.person_id == person_id)
            .order_by(tables.organisations.c.name)
        ).all()
        held: dict[str, tuple[Organisation, set[Role]]] = {}
        for row in rows:
            org = organisation_from_row(row)
            held.setdefault(org.id, (org, set()))[1].add(Role(row.role))
        return [Membership(org, frozenset(roles)) for org, roles in held.values()]

    def memberships(self, token: str | None) -> list[Membership]:
        """The organisations this session's person holds roles in (and the roles)."""
        with self.engine.connect() as conn:
            person_id, _ = self._session(conn, token)
            return self._organisations(conn, person_id)

    def choose(self, token: str | None, organisation_slug: str) -> Membership:
        """Act for ``organisation_slug`` from now on (only one the person holds a role in)."""
        with self.engine.begin() as conn:
            person_id, _ = self._session(conn, token)
            chosen = next(
                (
                    membership
                    for membership in self._organisations(conn, person_id)
                    if membership.organisation.slug == str(organisation_slug)
                ),
                None,
            )
            if chosen is None:
                raise InvalidInput("Choose one of the organisations shown.")
            conn.execute(
                update(staff_sessions)
                .where(staff_sessions.c.token_hash == _digest(str(token)))  # checked above
                .values(organisation_id=chosen.organisation.id)
            )
        return chosen

    def principal(self, token: str | None) -> Principal | None:
        """Who this session acts as, with the roles held now; None until an organisation is
        chosen. Raises NotSignedIn for a missing, unknown or expired session."""
        with self.engine.connect() as conn:
            person_id, organisation_id = self._session(conn, token)
            if organisation_id is None:
                return None
            org = conn.execute(
                select(tables.organisations).where(tables.organisations.c.id == organisation_id)
            ).one()
            roles = roles_held(conn, person_id, organisation_id)
        return Principal(
            person_id=person_id,
            organisation_id=organisation_id,
            organisation=org.slug,
            roles=frozenset(roles),
            approving_body=bool(org.approving_body),
        )

    def end(self, token: str) -> None:
        """Sign out: the session stops working at once."""
        if not isinstance(token, str) or not token:
            return
        with self.engine.begin() as conn:
            conn.execute(
                delete(staff_sessions).where(staff_sessions.c.token_hash == _digest(token))
            )
