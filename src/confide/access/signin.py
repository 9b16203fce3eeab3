"""People (not programs) signing in to the staff consoles: an emailed one-time code, a session.

Built like the patients' identity check (``confide.choices.identity``), so a stranger learns
nothing and can guess nothing:

- ``start`` answers the same way, in about the same time, whether or not the email belongs to
  a person holding a role. For an unknown email a decoy challenge is made that no code can
  open; nothing is sent.
- Every ``start`` counts against the email (as an HMAC) and the client; wrong codes count as
  failures. Over a limit both are locked for the window, known email or not.
- Codes are 6 digits, kept only as an HMAC under a key in the access folder, expire (default
  10 minutes), die after 3 wrong tries and work once.
- A session is a random token the browser holds; the store keeps only its SHA-256 digest, the
  person and the one organisation they act for (chosen when they belong to several). Roles
  are read again on every request, so taking a role away takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, delete, func, insert, select, update

from confide.access import store as t
from confide.access.errors import Unauthenticated
from confide.access.model import Organisation, Principal, Role
from confide.access.service import Access
from confide.access.signin_store import staff_attempts, staff_challenges, staff_sessions
from confide.common import exit_codes
from confide.common.errors import ConfideError, InvalidInput
from confide.common.secrets import load_or_create

GENERIC_START = (
    "If that email address belongs to someone with a role in Confide, we have sent it a "
    "6-digit code. It expires in {minutes} minutes."
)
EMAIL_MAX = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")  # the access party's own test


class TooManySignIns(ConfideError):
    """Locked out for a while: the same answer for every email, known or not."""

    exit_code = exit_codes.LOCKED_OUT


class NotSignedIn(Unauthenticated):
    """A code or session that does not open (wrong, expired, used or unknown: not said which)."""


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


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    message: str


@dataclass(frozen=True)
class Membership:
    """One organisation a signed-in person may act for, with their roles there."""

    organisation: Organisation
    roles: frozenset[Role]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
        self.config = config or SignInConfig()
        self._now = now or access._now

    @classmethod
    def open(cls, access: Access, folder: Path, **options: object) -> StaffSignIn:
        """The service with its code key in ``folder`` (the access party's folder)."""
        key = load_or_create(folder / "signin.key", lambda: secrets.token_bytes(32))
        return cls(access, key, **options)  # type: ignore[arg-type]

    # --- rate limits ------------------------------------------------------------------------

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def _locked(self, conn: Connection, limits: dict[str, int], kind: str, now: datetime) -> bool:
        since = now - self.config.window
        at = staff_attempts
        for key, limit in limits.items():
            count = conn.execute(
                select(func.count()).where(at.c.key == key, at.c.kind == kind, at.c.at >= since)
            ).scalar_one()
            if count >= limit:
                return True
        return False

    def _note(self, conn: Connection, keys: list[str], kind: str, now: datetime) -> None:
        conn.execute(insert(staff_attempts), [{"key": k, "kind": kind, "at": now} for k in keys])

    def _too_many(self) -> TooManySignIns:
        minutes = int(self.config.window.total_seconds() // 60)
        return TooManySignIns(
            "Too many attempts to sign in. For security, please wait and try again later.",
            hint=f"Try again in {minutes} minutes.",
        )

    # --- signing in -------------------------------------------------------------------------

    def start(self, email: str, client: str) -> Challenge:
        """Send a code if the email belongs to someone with a role; the answer never says."""
        began = time.perf_counter()
        try:
            return self._start(normal_email(email), client)
        finally:
            left = self.config.min_seconds - (time.perf_counter() - began)
            if left > 0:
                time.sleep(left)

    def _person_with_roles(self, conn: Connection, email: str) -> str | None:
        row = conn.execute(
            select(t.people.c.id)
            .join(t.memberships, t.memberships.c.person_id == t.people.c.id)
            .where(t.people.c.email == email)
            .limit(1)
        ).first()
        return row.id if row else None

    def _start(self, email: str, client: str) -> Challenge:
        now = self._now()
        email_key, client_key = self._mac("e", email), self._mac("c", client)
        code = f"{secrets.randbelow(1_000_000):06d}"
        challenge_id = secrets.token_urlsafe(24)
        expires = now + self.config.code_ttl
        with self.engine.begin() as conn:
            starts = {email_key: self.config.email_starts, client_key: self.config.client_starts}
            fails = {email_key: self.config.failures, client_key: self.config.failures}
            if self._locked(conn, starts, "start", now) or self._locked(conn, fails, "fail", now):
                raise self._too_many()
            self._note(conn, [email_key, client_key], "start", now)
            conn.execute(delete(staff_challenges).where(staff_challenges.c.expires_at < now))
            person_id = self._person_with_roles(conn, email)
            secret = code if person_id else secrets.token_hex(16)  # a decoy no code can open
            conn.execute(
                insert(staff_challenges).values(
                    challenge_id=challenge_id,
                    person_id=person_id,
                    subject=email_key,
                    code_hash=self._mac("code", challenge_id, secret),
                    created_at=now,
                    expires_at=expires,
                    attempts=0,
                )
            )
        if person_id and self.sender is not None:
            self.sender.send(email, code, expires)
        minutes = int(self.config.code_ttl.total_seconds() // 60)
        return Challenge(challenge_id, GENERIC_START.format(minutes=minutes))

    def verify(self, challenge_id: str, code: str, client: str) -> str:
        """Exchange a correct, fresh, unused code for a session token (shown only this once)."""
        now = self._now()
        ch = staff_challenges
        client_key = self._mac("c", client)
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(ch).where(ch.c.challenge_id == str(challenge_id)[:64])
            ).first()
            keys = {client_key: self.config.failures}
            if row is not None:
                keys[row.subject] = self.config.failures
            if self._locked(conn, keys, "fail", now):
                raise self._too_many()
            ok = (
                row is not None
                and row.person_id is not None
                and row.used_at is None
                and row.attempts < self.config.tries_per_code
                and _aware(row.expires_at) > now
                and hmac.compare_digest(
                    row.code_hash, self._mac("code", row.challenge_id, str(code).strip())
                )
            )
            if not ok:
                if row is not None:
                    conn.execute(
                        update(ch)
                        .where(ch.c.challenge_id == row.challenge_id)
                        .values(attempts=ch.c.attempts + 1)
                    )
                self._note(conn, list(keys), "fail", now)
            else:
                used = conn.execute(
                    update(ch)
                    .where(ch.c.challenge_id == row.challenge_id, ch.c.used_at.is_(None))
                    .values(used_at=now)
                )
                ok = used.rowcount == 1  # two tabs racing: the code works once
                if ok:
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
        if not ok:
            raise NotSignedIn(
                "That code is not right, or it has expired or already been used.",
                hint="Check the code in your email, or sign in again to get a new one.",
            )
        return token

    # --- sessions ---------------------------------------------------------------------------

    def _session(self, conn: Connection, token: str) -> tuple[str, str | None]:
        if not isinstance(token, str) or not token or len(token) > 100:
            raise self._ended()
        row = conn.execute(
            select(staff_sessions).where(staff_sessions.c.token_hash == _digest(token))
        ).first()
        if row is None or _aware(row.expires_at) <= self._now():
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
            select(t.organisations, t.memberships.c.role)
            .join(t.memberships, t.memberships.c.organisation_id == t.organisations.c.id)
            .where(t.memberships.c.person_id == person_id)
            .order_by(t.organisations.c.name)
        ).all()
        held: dict[str, tuple[Organisation, set[Role]]] = {}
        for r in rows:
            org = Access._org(r)
            held.setdefault(org.id, (org, set()))[1].add(Role(r.role))
        return [Membership(org, frozenset(roles)) for org, roles in held.values()]

    def memberships(self, token: str) -> list[Membership]:
        """The organisations this session's person holds roles in (and the roles)."""
        with self.engine.connect() as conn:
            person_id, _ = self._session(conn, token)
            return self._organisations(conn, person_id)

    def choose(self, token: str, organisation_slug: str) -> Membership:
        """Act for ``organisation_slug`` from now on (only one the person holds a role in)."""
        with self.engine.begin() as conn:
            person_id, _ = self._session(conn, token)
            chosen = next(
                (
                    m
                    for m in self._organisations(conn, person_id)
                    if m.organisation.slug == str(organisation_slug)
                ),
                None,
            )
            if chosen is None:
                raise InvalidInput("Choose one of the organisations shown.")
            conn.execute(
                update(staff_sessions)
                .where(staff_sessions.c.token_hash == _digest(token))
                .values(organisation_id=chosen.organisation.id)
            )
        return chosen

    def principal(self, token: str) -> Principal | None:
        """Who this session acts as, with the roles held now; None until an organisation is
        chosen. Raises NotSignedIn for a missing, unknown or expired session."""
        with self.engine.connect() as conn:
            person_id, organisation_id = self._session(conn, token)
            if organisation_id is None:
                return None
            org = conn.execute(
                select(t.organisations).where(t.organisations.c.id == organisation_id)
            ).one()
            roles = conn.execute(
                select(t.memberships.c.role).where(
                    t.memberships.c.person_id == person_id,
                    t.memberships.c.organisation_id == organisation_id,
                )
            ).all()
        return Principal(
            person_id=person_id,
            organisation_id=organisation_id,
            organisation=org.slug,
            roles=frozenset(Role(r.role) for r in roles),
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
