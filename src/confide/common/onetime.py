"""One-time codes for people proving who they are: patients (choices) and staff (access).

One implementation, so the two journeys cannot drift apart. It promises:

- ``issue`` answers the same way whether or not the subject (NHS number, email) is known:
  for an unknown one a decoy challenge is made that no code can ever open, and nothing is
  sent. Known or not, the attempt counts against the client, the subject and the pair
  (``confide.common.throttle``), so a throttle never reveals a match either.
- Codes are 6 digits, kept only as an HMAC under the party's key, expire, die after a few
  wrong tries and work once (even with two tabs racing).
- Nothing sleeps here. Every answer comes back ``Paced``: with the moment before which it must
  not be given (a floor that hides how long the look-up took, plus any throttle hold). Sync
  callers (the CLI) ``settle()``; web handlers ``await settle_async()`` so a held attempt
  costs the server a timer, never a thread or the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.engine import Row

from confide.common.clock import as_utc
from confide.common.errors import ConfideError
from confide.common.throttle import Kind, Limits, Scope, Throttle, Verdict

T = TypeVar("T")
U = TypeVar("U")
CODE_DIGITS = 6


@dataclass(frozen=True)
class CodeRules:
    code_ttl: timedelta = timedelta(minutes=10)
    tries_per_code: int = 3
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Paced(Generic[T]):
    """An answer (or refusal) that must not be given before ``not_before`` (monotonic)."""

    not_before: float
    value: T | None = None
    error: ConfideError | None = None
    delay: float = 0.0  # seconds from the attempt to the answer (the floor or the hold)

    def wait(self) -> float:
        return max(0.0, self.not_before - time.monotonic())

    def _result(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set when error is None

    def settle(self) -> T:
        """Wait (blocking this thread), then answer: for the CLI and library callers."""
        time.sleep(self.wait())
        return self._result()

    async def settle_async(self) -> T:
        """Wait without blocking the event loop, then answer: for web handlers."""
        await asyncio.sleep(self.wait())
        return self._result()

    def then(self, convert: Callable[[T], U]) -> Paced[U]:
        """The same pacing over a converted value (errors pass through)."""
        if self.error is not None:
            return Paced(self.not_before, error=self.error, delay=self.delay)
        value = convert(self.value)  # type: ignore[arg-type]  # set when error is None
        return Paced(self.not_before, value=value, delay=self.delay)


def paced(action: Callable[[], tuple[T, float]], *, floor: float = 0.0) -> Paced[T]:
    """Run ``action`` (returning a value and a hold), keeping any ConfideError as the answer;
    the answer is due ``max(floor, hold)`` seconds after the start."""
    began = time.monotonic()
    try:
        value, hold = action()
    except ConfideError as exc:
        return Paced(not_before=began + floor, error=exc, delay=floor)
    delay = max(floor, hold)
    return Paced(not_before=began + delay, value=value, delay=delay)


class _Failed(Exception):
    def __init__(self, error: ConfideError, hold: float) -> None:
        self.error, self.hold = error, hold


@dataclass(frozen=True)
class Issued:
    challenge_id: str
    code: str | None  # None for a decoy: nothing is sent
    expires_at: datetime
    hold: float


class OneTimeCodes:
    """Challenges and throttle over one party's tables, under one party's key.

    ``challenges`` has columns challenge_id, person_id (None: a decoy), subject, code_hash,
    created_at, expires_at, attempts, used_at; ``attempts`` has key, kind, at.
    """

    def __init__(
        self,
        key: bytes,
        challenges: Table,
        attempts: Table,
        rules: CodeRules,
        *,
        too_many: Callable[[float], ConfideError],
        not_verified: Callable[[], ConfideError],
    ) -> None:
        self._key = key
        self.challenges = challenges
        self.throttle = Throttle(attempts, rules.limits)
        self.rules = rules
        self._too_many = too_many
        self._not_verified = not_verified

    def mac(self, *parts: str) -> str:
        return hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def _keys(self, subject: str, client: str) -> dict[Scope, str]:
        return {
            Scope.CLIENT: self.mac("c", client),
            Scope.SUBJECT: subject,
            Scope.PAIR: self.mac("pair", subject, client),
        }

    def _check(
        self, conn: Connection, keys: dict[Scope, str], kinds: tuple[Kind, ...], now: datetime
    ) -> Verdict:
        verdict = self.throttle.judge(conn, keys, kinds, now)
        if verdict.refused:
            raise self._too_many(verdict.retry_after)
        return verdict

    def subject(self, label: str, value: str) -> str:
        """The throttle and challenge key for an identifier (an HMAC: never the value)."""
        return self.mac(label, value)

    def issue(
        self, conn: Connection, subject: str, client: str, person_id: Any, now: datetime
    ) -> Issued:
        """Count a start and make a challenge (a decoy when ``person_id`` is None), inside the
        caller's transaction. Raises the party's "too many" error when refused."""
        keys = self._keys(subject, client)
        verdict = self._check(conn, keys, (Kind.START, Kind.FAIL), now)
        self.throttle.note(conn, keys, Kind.START, now)
        conn.execute(delete(self.challenges).where(self.challenges.c.expires_at < now))
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        challenge_id = secrets.token_urlsafe(24)
        secret = code if person_id is not None else secrets.token_hex(16)  # a decoy never opens
        expires = now + self.rules.code_ttl
        conn.execute(
            insert(self.challenges).values(
                challenge_id=challenge_id,
                person_id=person_id,
                subject=subject,
                code_hash=self.mac("code", challenge_id, secret),
                created_at=now,
                expires_at=expires,
                attempts=0,
            )
        )
        return Issued(challenge_id, code if person_id is not None else None, expires, verdict.hold)

    def redeem(
        self,
        engine: Engine,
        challenge_id: str,
        code: str,
        client: str,
        now: datetime,
        on_success: Callable[[Connection, Row[Any]], T],
    ) -> Paced[T]:
        """Exchange a right, fresh, unused code: ``on_success`` runs in the same transaction
        as the code being spent. A wrong code is held as long as a right one would be."""
        began = time.monotonic()
        try:
            value, hold = self._redeem(engine, challenge_id, code, client, now, on_success)
        except _Failed as failed:
            return Paced(began + failed.hold, error=failed.error, delay=failed.hold)
        except ConfideError as exc:
            return Paced(began, error=exc)
        return Paced(began + hold, value=value, delay=hold)

    def _redeem(
        self,
        engine: Engine,
        challenge_id: str,
        code: str,
        client: str,
        now: datetime,
        on_success: Callable[[Connection, Row[Any]], T],
    ) -> tuple[T, float]:
        challenges = self.challenges
        with engine.begin() as conn:
            row = conn.execute(
                select(challenges).where(challenges.c.challenge_id == str(challenge_id)[:64])
            ).first()
            # Wrong codes count against the subject given at the start, decoy or not, so a
            # throttle never tells a stranger that the details had matched.
            keys = {Scope.CLIENT: self.mac("c", client)}
            if row is not None:
                keys = self._keys(row.subject, client)
            verdict = self._check(conn, keys, (Kind.FAIL,), now)
            ok = (
                row is not None
                and row.person_id is not None
                and row.used_at is None
                and row.attempts < self.rules.tries_per_code
                and as_utc(row.expires_at) > now
                and hmac.compare_digest(
                    row.code_hash, self.mac("code", row.challenge_id, str(code).strip())
                )
            )
            result: T | None = None
            if ok and row is not None:
                spent = conn.execute(
                    update(challenges)
                    .where(
                        challenges.c.challenge_id == row.challenge_id,
                        challenges.c.used_at.is_(None),
                    )
                    .values(used_at=now)
                )
                ok = spent.rowcount == 1  # two tabs racing: the code works once
                if ok:
                    result = on_success(conn, row)
            if not ok:
                if row is not None:
                    conn.execute(
                        update(challenges)
                        .where(challenges.c.challenge_id == row.challenge_id)
                        .values(attempts=challenges.c.attempts + 1)
                    )
                self.throttle.note(conn, keys, Kind.FAIL, now)
        if not ok:
            raise _Failed(self._not_verified(), verdict.hold)
        return result, verdict.hold  # type: ignore[return-value]  # set when ok
