"""Online identity checks: NHS number + date of birth + postcode, then a one-time code.

Designed so that a stranger learns nothing and can guess nothing:

- ``start`` answers the same way, in about the same time, whether or not the details match a
  person (or the NHS number is registered at all). For a mismatch a decoy challenge is made
  that no code can ever open; nothing is sent.
- Every ``start`` counts against the NHS number and the client, matched or not, so a lock-out
  never reveals a match either; wrong codes count as failures. Over the limit, both are locked
  for the window (default: 5 starts or 5 wrong codes per 15 minutes per person; 20 starts or 5
  wrong codes per client).
- Codes are 6 digits, stored only as an HMAC under a key held in the choices folder, expire
  (default 10 minutes), die after 3 wrong tries and work once.
- A verified person gets a short-lived signed session token; the NHS number never leaves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, func, insert, select, update

from confide.choices import store
from confide.choices.model import utc
from confide.choices.registry import ChoicesRegistry
from confide.common import exit_codes, postcode
from confide.common import nhs_number as nhs
from confide.common.errors import ConfideError, InvalidInput
from confide.common.secrets import load_or_create, write_secret

GENERIC_START = (
    "If the details match our records, we have sent a 6-digit code to the contact details "
    "your GP practice holds. It expires in {minutes} minutes."
)


class TooManyAttempts(ConfideError):
    """Locked out for a while: the same answer for everyone, known or not."""

    exit_code = exit_codes.LOCKED_OUT


class NotVerified(ConfideError):
    """A code or session that does not open (wrong, expired, used or unknown: not said which)."""

    exit_code = exit_codes.NOT_SIGNED_IN


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
        self.config = config or IdentityConfig()
        self._now = now or (lambda: utc(None))

    @classmethod
    def open(
        cls,
        registry: ChoicesRegistry,
        home_root: Path,
        **kwargs: object,
    ) -> IdentityService:
        """The service with its key in the choices folder and the outbox notifier."""
        key = load_or_create(
            Path(registry.folder) / "identity.key", lambda: secrets.token_bytes(32)
        )
        kwargs.setdefault("notifier", OutboxNotifier(home_root / "outbox"))
        return cls(registry, key, **kwargs)  # type: ignore[arg-type]

    # --- hashing and rate limits -----------------------------------------------------------

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def _count(self, conn, key: str, kind: str, since: datetime) -> int:
        at = store.identity_attempts
        return conn.execute(
            select(func.count()).where(at.c.key == key, at.c.kind == kind, at.c.at >= since)
        ).scalar_one()

    def _locked(self, conn, keys: dict[str, int], kind: str, now: datetime) -> bool:
        since = now - self.config.window
        return any(self._count(conn, key, kind, since) >= limit for key, limit in keys.items())

    def _note(self, conn, keys: list[str], kind: str, now: datetime) -> None:
        conn.execute(
            insert(store.identity_attempts), [{"key": k, "kind": kind, "at": now} for k in keys]
        )

    def _too_many(self) -> TooManyAttempts:
        minutes = int(self.config.window.total_seconds() // 60)
        return TooManyAttempts(
            "Too many attempts. For your security, please wait and try again later.",
            hint=f"Try again in {minutes} minutes, or contact your GP practice.",
        )

    # --- the journey -----------------------------------------------------------------------

    def start(self, nhs_number: str, birth_date: str, postcode_raw: str, client: str) -> Started:
        """Check the details and send a code if they match; the answer never says which."""
        began = time.perf_counter()
        try:
            return self._start(nhs_number, birth_date, postcode_raw, client)
        finally:
            left = self.config.min_seconds - (time.perf_counter() - began)
            if left > 0:
                time.sleep(left)

    def _start(self, nhs_number: str, birth_date: str, postcode_raw: str, client: str) -> Started:
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
        person_key, client_key = self._mac("p", number), self._mac("c", client)
        found = self.demographics.lookup(number)
        match = (
            found is not None and found[1].birth_date == birth and found[1].postcode == code_normal
        )
        code = f"{secrets.randbelow(1_000_000):06d}"
        challenge_id = secrets.token_urlsafe(24)
        with self.registry.engine.begin() as conn:
            limits = {person_key: self.config.person_starts, client_key: self.config.client_starts}
            if self._locked(conn, limits, "start", now) or self._locked(
                conn,
                {person_key: self.config.failures, client_key: self.config.failures},
                "fail",
                now,
            ):
                raise self._too_many()
            self._note(conn, [person_key, client_key], "start", now)
            secret = code if match else secrets.token_hex(16)  # a decoy no code can open
            expires = now + self.config.code_ttl
            conn.execute(
                insert(store.identity_challenges).values(
                    challenge_id=challenge_id,
                    person_id=found[0] if match else None,
                    subject=person_key,
                    code_hash=self._mac("code", challenge_id, secret),
                    created_at=now,
                    expires_at=expires,
                    attempts=0,
                )
            )
        if match and self.notifier is not None:
            self.notifier.send(found[1].contact, code, expires)
        minutes = int(self.config.code_ttl.total_seconds() // 60)
        return Started(
            challenge_id,
            GENERIC_START.format(minutes=minutes),
            int(self.config.code_ttl.total_seconds()),
        )

    def verify(self, challenge_id: str, code: str, client: str) -> Session:
        """Exchange a correct, fresh, unused code for a session token."""
        now = self._now()
        ch = store.identity_challenges
        client_key = self._mac("c", client)
        with self.registry.engine.begin() as conn:
            row = conn.execute(
                select(ch).where(ch.c.challenge_id == str(challenge_id)[:64])
            ).first()
            # Wrong codes count against the NHS number given at the start, decoy or not, so a
            # lock-out never tells a stranger that the details had matched.
            keys = {client_key: self.config.failures}
            if row is not None:
                keys[row.subject] = self.config.failures
            if self._locked(conn, keys, "fail", now):
                raise self._too_many()
            ok = (
                row is not None
                and row.used_at is None
                and row.attempts < self.config.tries_per_code
                and utc(row.expires_at) > now
                and hmac.compare_digest(
                    row.code_hash, self._mac("code", row.challenge_id, str(code).strip())
                )
                and row.person_id is not None
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
                conn.execute(
                    update(ch).where(ch.c.challenge_id == row.challenge_id).values(used_at=now)
                )
                session_id = secrets.token_urlsafe(24)
                expires = now + self.config.session_ttl
                conn.execute(
                    insert(store.identity_sessions).values(
                        session_id=session_id,
                        person_id=row.person_id,
                        created_at=now,
                        expires_at=expires,
                    )
                )
        if not ok:
            raise NotVerified(
                "That code is not right, or it has expired or already been used.",
                hint="Check the code in your message, or start again to get a new one.",
            )
        return Session(
            self._sign(session_id, expires), int(self.config.session_ttl.total_seconds())
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
