"""Throttling sign-in attempts so that nobody can turn the throttle against someone else.

Every attempt (a ``start`` that asks for a code, or a ``fail`` that is a wrong code) counts
against three keys, all HMACs so no address or identifier is stored in clear:

- the **client** (network address): only the attacker's own address suffers, so over its
  allowance it is *refused*, for a delay that doubles with each attempt (up to the window);
- the **pair** (this identity from this client): refused in the same way, so one address
  hammering one person is stopped without touching anyone else;
- the **subject** (the NHS number or email asked about): every attempt is *held* for a delay
  that grows with the attempts on that subject from anywhere, capped at a few seconds, and
  never refused. Rotating addresses therefore slows a guesser on that subject more and more,
  but can at worst make the real person wait a few seconds: there is no lock to trigger.

Nothing here sleeps: a verdict says how long to hold, and the caller waits in the way its
context allows (``confide.common.onetime.Paced``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Table, delete, func, insert, select


class Scope(StrEnum):
    CLIENT = "client"
    PAIR = "pair"
    SUBJECT = "subject"


class Kind(StrEnum):
    START = "start"  # a code was asked for
    FAIL = "fail"  # a wrong, expired, used or unknown code was offered


@dataclass(frozen=True)
class Rule:
    """After ``free`` attempts of ``kind`` on ``scope`` in the window, a delay of
    ``base * 2**(n - free)`` seconds, at most ``cap``: refused (the caller may try again after
    it) or, when ``refuse`` is false, a hold on the attempt itself."""

    scope: Scope
    kind: Kind
    free: int
    base: float
    cap: float
    refuse: bool

    def delay(self, attempts: int) -> float:
        if attempts < self.free:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(attempts - self.free, 40))


@dataclass(frozen=True)
class Limits:
    """The allowances, as the services configure them."""

    window: timedelta = timedelta(minutes=15)
    subject_starts: int = 5
    client_starts: int = 20
    failures: int = 5
    hold_cap: float = 8.0  # the most a stranger can make a real person wait, in seconds

    def rules(self) -> tuple[Rule, ...]:
        cap = self.window.total_seconds()
        return (
            Rule(Scope.CLIENT, Kind.START, self.client_starts, 1.0, cap, refuse=True),
            Rule(Scope.CLIENT, Kind.FAIL, self.failures, 2.0, cap, refuse=True),
            Rule(Scope.PAIR, Kind.START, self.subject_starts, 2.0, cap, refuse=True),
            Rule(Scope.PAIR, Kind.FAIL, self.failures, 2.0, cap, refuse=True),
            Rule(Scope.SUBJECT, Kind.START, self.subject_starts, 0.5, self.hold_cap, refuse=False),
            Rule(Scope.SUBJECT, Kind.FAIL, self.failures, 0.5, self.hold_cap, refuse=False),
        )


@dataclass(frozen=True)
class Verdict:
    retry_after: float  # > 0: refused, try again after this many seconds
    hold: float  # seconds to hold the attempt before answering

    @property
    def refused(self) -> bool:
        return self.retry_after > 0


class Throttle:
    """Counts attempts in a party's own ``attempts`` table (key, kind, at) and judges them."""

    def __init__(self, attempts: Table, limits: Limits) -> None:
        self.table = attempts
        self.limits = limits

    def _seen(
        self, conn: Connection, key: str, kind: Kind, since: datetime
    ) -> tuple[int, datetime | None]:
        at = self.table
        row = conn.execute(
            select(func.count(), func.max(at.c.at)).where(
                at.c.key == key, at.c.kind == kind.value, at.c.at >= since
            )
        ).one()
        return int(row[0]), row[1]

    def judge(
        self, conn: Connection, keys: dict[Scope, str], kinds: tuple[Kind, ...], now: datetime
    ) -> Verdict:
        """How this attempt is treated, from the attempts already counted in the window."""
        since = now - self.limits.window
        retry, hold = 0.0, 0.0
        for rule in self.limits.rules():
            key = keys.get(rule.scope)
            if key is None or rule.kind not in kinds:
                continue
            count, last = self._seen(conn, key, rule.kind, since)
            delay = rule.delay(count)
            if delay <= 0:
                continue
            if not rule.refuse:
                hold = max(hold, delay)
            elif last is not None:
                last = last if last.tzinfo else last.replace(tzinfo=now.tzinfo)
                retry = max(retry, (last - now).total_seconds() + delay)
        return Verdict(retry_after=retry, hold=hold)

    def note(self, conn: Connection, keys: dict[Scope, str], kind: Kind, now: datetime) -> None:
        """Count an attempt against every key (and forget this key's attempts out of window)."""
        values = sorted(set(keys.values()))
        conn.execute(
            delete(self.table).where(
                self.table.c.key.in_(values), self.table.c.at < now - self.limits.window
            )
        )
        conn.execute(
            insert(self.table), [{"key": k, "kind": kind.value, "at": now} for k in values]
        )
