"""Online identity checks: NHS number + date of birth + postcode, then a one-time code.

Designed so that a stranger learns nothing and can guess nothing:

- ``start`` answers the same way, in about the same time, whether or not the details match a
  person (or the NHS number is registered at all). For a mismatch a decoy challenge is made
  that no code can ever open; nothing is sent.
- Codes and throttling are the shared ``confide.common.onetime`` and ``confide.common.throttle``
  (the staff sign-in uses the same): every attempt counts against the client, the NHS number
  and the pair, matched or not. A client over its allowance is refused for a growing delay;
  attempts on a busy NHS number are held for a growing delay of a few seconds at most, never
  refused, so nobody can lock a chosen person out by guessing from many addresses.
- Codes are 6 digits, stored only as an HMAC under a key held in the choices folder, expire
  (default 10 minutes), die after 3 wrong tries and work once.
- A verified person gets a short-lived signed session token; the NHS number never leaves.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import Row

from confide.choices import store
from confide.choices.model import utc
from confide.choices.registry import ChoicesRegistry
from confide.common import exit_codes, postcode
from confide.common import nhs_number as nhs
from confide.common.errors import ConfideError, InvalidInput
from confide.common.onetime import CodeRules, OneTimeCodes, Paced, paced
from confide.common.secrets import load_or_create, write_secret
from confide.common.throttle import Limits

GENERIC_START = (
    "If the details match our records, we have sent a 6-digit code to the contact details "
    "your GP practice holds. It expires in {minutes} minutes."
)


class TooManyAttempts(ConfideError):
    """Locked out for a while: the same answer for everyone, known or not."""

    exit_code = exit_codes.LOCKED_OUT
    retry_after: int = 0


class NotVerified(ConfideError):
    """A code or session that does not open (wrong, expired, used or unknown: not said which)."""

    exit_code = exit_codes.NOT_SIGNED_IN


def _too_many(retry_after: float) -> TooManyAttempts:
    seconds = max(1, int(retry_after + 0.999))
    error = TooManyAttempts(
        "Too many attempts from here. For your security, please wait and try again later.",
        hint=f"Try again in {_span(seconds)}, or contact your GP practice.",
    )
    error.retry_after = seconds
    return error


def _not_verified() -> NotVerified:
    return NotVerified(
        "That code is not right, or it has expired or already been used.",
        hint="Check the code in your message, or start again to get a new one.",
    )


def _span(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{(seconds + 59) // 60} minutes"


@dataclass(frozen=True)
class IdentityFacts:
    birth_date: date | None
    postcode: str | None
    contact: str | None


class Demographics(Protocol):
    """Where identity facts come from (the registry's demographics table by default)."""

    def lookup(self, nhs_number: str) -> tuple[int, IdentityFacts] | None:
        """(person id, facts), or None when the person is not known."""


class Notifier(Protocol):
    """Sends a one-time code to a person's registered contact."""

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None: ...


class StoreDemographics:
    """Demographics from the registry's own table (filled by ``enrol_demographics``)."""

    def __init__(self, registry: ChoicesRegistry) -> None:
        self.registry = registry

    def lookup(self, nhs_number: str) -> tuple[int, IdentityFacts] | None:
        pp, dm = store.people, store.demographics
        with self.registry.engine.connect() as conn:
            row = conn.execute(
                select(pp.c.id, dm.c.birth_date, dm.c.postcode, dm.c.contact)
                .join(dm, dm.c.person_id == pp.c.id)
                .where(pp.c.nhs_number == nhs_number)
            ).first()
        if row is None:
            return None
        return row.id, IdentityFacts(row.birth_date, row.postcode, row.contact)


def mask(contact: str | None) -> str:
    """A destination a person recognises but a bystander cannot use."""
    if not contact:
        return "the contact details held by your GP practice"
    if "@" in contact:
        local, _, domain = contact.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = "".join(ch for ch in contact if ch.isdigit())
    return f"phone ending {digits[-3:]}" if len(digits) >= 3 else "your phone"


class OutboxNotifier:
    """Writes each message to ``outbox/<timestamp>-<random>.json`` (what the demo shows)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = utc(None).strftime("%Y%m%dT%H%M%S%fZ")
        message = {
            "to": mask(contact),
            "code": code,
            "expires_at": expires_at.isoformat(),
            "text": f"Your Confide code is {code}. It expires at {expires_at:%H:%M} UTC. "
            "Nobody from the NHS will ask you for it.",
        }
        write_secret(
            self.folder / f"{stamp}-{secrets.token_hex(4)}.json",
            json.dumps(message, indent=2).encode(),
        )


@dataclass(frozen=True)
class IdentityConfig:
    code_ttl: timedelta = timedelta(minutes=10)
    session_ttl: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(minutes=15)
    person_starts: int = 5
    client_starts: int = 20
    failures: int = 5
    tries_per_code: int = 3
    min_seconds: float = 0.25  # every start takes at least this long, match or not
    hold_cap: float = 8.0  # the longest a stranger can make a real person wait, in seconds

    def code_rules(self) -> CodeRules:
        limits = Limits(
            window=self.window,
            subject_starts=self.person_starts,
            client_starts=self.client_starts,
            failures=self.failures,
            hold_cap=self.hold_cap,
        )
        return CodeRules(self.code_ttl, self.tries_per_code, limits)


@dataclass(frozen=True)
class Started:
    challenge_id: str
    message: str
    expires_in: int


@dataclass(frozen=True)
class Session:
    token: str
    expires_in: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IdentityService:
    """Start and finish an online identity check; open sessions from tokens."""

    def __init__(
        self,
        registry: ChoicesRegistry,
        key: bytes,
        *,
        demographics: Demographics | None = None,
        notifier: Notifier | None = None,
        config: IdentityConfig | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.registry = registry
        self._key = key
        self.demographics = demographics or StoreDemographics(registry)
        self.notifier = notifier
        self._now = now or (lambda: utc(None))
        self.config = config or IdentityConfig()

    @property
    def config(self) -> IdentityConfig:
        return self._config

    @config.setter
    def config(self, config: IdentityConfig) -> None:
        self._config = config
        self.codes = OneTimeCodes(
            self._key,
            store.identity_challenges,
            store.identity_attempts,
            config.code_rules(),
            too_many=_too_many,
            not_verified=_not_verified,
        )

    @classmethod
    def open(
        cls,
        registry: ChoicesRegistry,
        home_root: Path,
        **kwargs: Any,
    ) -> IdentityService:
        """The service with its key in the choices folder and the outbox notifier."""
        key = load_or_create(
            Path(registry.folder) / "identity.key", lambda: secrets.token_bytes(32)
        )
        kwargs.setdefault("notifier", OutboxNotifier(home_root / "outbox"))
        return cls(registry, key, **kwargs)

    # --- the journey -----------------------------------------------------------------------

    def _mac(self, *parts: str) -> str:
        return self.codes.mac(*parts)

    def start(self, nhs_number: str, birth_date: str, postcode_raw: str, client: str) -> Started:
        """Check the details and send a code if they match; the answer never says which.
        Blocks this thread for the floor and any throttle hold (the web uses ``begin_start``)."""
        return self.begin_start(nhs_number, birth_date, postcode_raw, client).settle()

    def begin_start(
        self, nhs_number: str, birth_date: str, postcode_raw: str, client: str
    ) -> Paced[Started]:
        """``start`` without the wait: the answer and when it may be given."""
        return paced(
            lambda: self._start(nhs_number, birth_date, postcode_raw, client),
            floor=self.config.min_seconds,
        )

    def _start(
        self, nhs_number: str, birth_date: str, postcode_raw: str, client: str
    ) -> tuple[Started, float]:
        reason = nhs.why_invalid(nhs_number)
        if reason:
            raise InvalidInput(f"{reason}.", hint="Check the NHS number and enter it again.")
        try:
            birth = date.fromisoformat(str(birth_date).strip())
        except ValueError:
            raise InvalidInput("Enter the date of birth as YYYY-MM-DD.") from None
        code_normal = postcode.normalise(postcode_raw)
        if code_normal is None:
            raise InvalidInput("Enter a full UK postcode, for example LS1 4AP.")
        number = nhs.normalise(nhs_number) or ""
        now = self._now()
        found = self.demographics.lookup(number)
        match = (
            found is not None and found[1].birth_date == birth and found[1].postcode == code_normal
        )
        with self.registry.engine.begin() as conn:
            issued = self.codes.issue(
                conn,
                self._mac("p", number),
                client,
                found[0] if match and found is not None else None,
                now,
            )
        if issued.code is not None and found is not None and self.notifier is not None:
            self.notifier.send(found[1].contact, issued.code, issued.expires_at)
        minutes = int(self.config.code_ttl.total_seconds() // 60)
        started = Started(
            issued.challenge_id,
            GENERIC_START.format(minutes=minutes),
            int(self.config.code_ttl.total_seconds()),
        )
        return started, issued.hold

    def verify(self, challenge_id: str, code: str, client: str) -> Session:
        """Exchange a correct, fresh, unused code for a session token (blocks for any hold)."""
        return self.begin_verify(challenge_id, code, client).settle()

    def begin_verify(self, challenge_id: str, code: str, client: str) -> Paced[Session]:
        """``verify`` without the wait."""
        now = self._now()
        expires = now + self.config.session_ttl

        def open_session(conn: Connection, row: Row[Any]) -> Session:
            session_id = secrets.token_urlsafe(24)
            conn.execute(
                insert(store.identity_sessions).values(
                    session_id=session_id,
                    person_id=row.person_id,
                    created_at=now,
                    expires_at=expires,
                )
            )
            return Session(
                self._sign(session_id, expires), int(self.config.session_ttl.total_seconds())
            )

        return self.codes.redeem(
            self.registry.engine, challenge_id, code, client, now, open_session
        )

    def _sign(self, session_id: str, expires: datetime) -> str:
        payload = _b64(json.dumps({"sid": session_id, "exp": int(expires.timestamp())}).encode())
        return f"{payload}.{_b64(bytes.fromhex(self._mac('session', payload)))}"

    def person(self, token: str) -> str:
        """The NHS number behind a valid, unexpired session token (NotVerified otherwise)."""
        refused = NotVerified(
            "Your session has ended or is not valid.", hint="Confirm who you are again."
        )
        payload, _, signature = str(token).partition(".")
        expected = _b64(bytes.fromhex(self._mac("session", payload)))
        if not payload or not hmac.compare_digest(signature, expected):
            raise refused
        try:
            session_id = json.loads(base64.urlsafe_b64decode(payload + "==="))["sid"]
        except (ValueError, KeyError, TypeError):
            raise refused from None
        ss, pp = store.identity_sessions, store.people
        with self.registry.engine.connect() as conn:
            row = conn.execute(
                select(pp.c.nhs_number, ss.c.expires_at)
                .join(pp, pp.c.id == ss.c.person_id)
                .where(ss.c.session_id == str(session_id))
            ).first()
        if row is None or utc(row.expires_at) <= self._now():
            raise refused
        return row.nhs_number

    def end(self, token: str) -> None:
        """Sign out: the session stops working at once."""
        try:
            payload = str(token).partition(".")[0]
            session_id = json.loads(base64.urlsafe_b64decode(payload + "==="))["sid"]
        except (ValueError, KeyError, TypeError):
            return
        with self.registry.engine.begin() as conn:
            conn.execute(
                delete(store.identity_sessions).where(
                    store.identity_sessions.c.session_id == str(session_id)
                )
            )
