"""The relay: delivers every party's outbox at least once, with retries and backoff.

Events are handed to their receivers in outbox order, a run of the same kind at a time (so a
thousand erasure requests cost one pass over the record store, not a thousand). A receiver that
fails leaves its events pending with the next attempt pushed back; the rest of that outbox waits
behind them, so events are never delivered out of order. Receivers must be idempotent: an event
delivered, then not marked (a crash between the two), comes again.

The embedded deployment runs the relay in-process after each change and at the end of each
command; ``confide serve`` also runs it in the background; ``confide relay run`` drains it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from confide.common.clock import utcnow
from confide.events.outbox import Backoff, Outbox, Pending
from confide.events.types import EVENT_TYPES, Event

Handler = Callable[[Sequence[Event]], None]


@dataclass
class RelayReport:
    delivered: int = 0
    failed: int = 0
    pending: int = 0  # filled in by ``drain``
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "pending": self.pending,
            "errors": self.errors,
        }


class MissingReceiver(Exception):
    """No receiver is wired for a kind of event (a wiring defect, never skipped)."""


class Relay:
    """Delivers due events from ``outboxes`` to ``handlers`` (one per event type, all required)."""

    def __init__(
        self,
        outboxes: Sequence[Outbox],
        handlers: Mapping[type[Event], Handler],
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        missing = sorted(k for k, cls in EVENT_TYPES.items() if cls not in handlers)
        if missing:
            raise MissingReceiver("no receiver for: " + ", ".join(missing))
        self.outboxes = list(outboxes)
        self.handlers = dict(handlers)
        self.backoff = backoff or Backoff()
        self.clock = clock or utcnow
        self._lock = threading.Lock()
        self._local = threading.local()

    def deliver(self, *, rounds: int = 50) -> RelayReport:
        """Deliver everything due now; returns what happened. Does nothing (and returns at
        once) if called from a receiver, or while another thread is delivering: that thread
        picks up what is new."""
        report = RelayReport()
        if getattr(self._local, "active", False) or not self._lock.acquire(blocking=False):
            return report
        self._local.active = True
        try:
            for _ in range(rounds):
                if not self._round(report):
                    break
        finally:
            self._local.active = False
            self._lock.release()
        return report

    def pending(self) -> int:
        """Events not yet delivered, in every outbox."""
        return sum(box.counts()["pending"] for box in self.outboxes)

    def _round(self, report: RelayReport) -> bool:
        progressed = False
        for box in self.outboxes:
            due = box.due(self.clock())
            for _kind, run in groupby(due, key=lambda p: type(p.event)):
                items = list(run)
                if not self._hand_over(box, items, report):
                    break  # later events of this outbox wait behind the failed ones
                progressed = True
        return progressed

    def _hand_over(self, box: Outbox, items: list[Pending], report: RelayReport) -> bool:
        handler = self.handlers[type(items[0].event)]
        try:
            handler([p.event for p in items])
        except Exception as exc:  # any receiver failure: keep the events, try again later
            box.failed(items, exc, self.backoff, self.clock())
            report.failed += len(items)
            report.errors.append(f"{box.party}: {items[0].event.kind}: {type(exc).__name__}")
            return False
        box.delivered([p.seq for p in items], self.clock())
        report.delivered += len(items)
        return True

    def drain(self, *, timeout: float = 60.0, poll: float = 0.2) -> RelayReport:
        """Deliver until nothing is pending, waiting out backoffs, for at most ``timeout``
        seconds; the last report (``pending`` > 0 when time ran out)."""
        deadline = time.monotonic() + timeout
        total = RelayReport()
        while True:
            report = self.deliver()
            total.delivered += report.delivered
            total.failed += report.failed
            total.errors.extend(report.errors)
            total.pending = self.pending()
            if total.pending == 0 or time.monotonic() >= deadline:
                return total
            wait = self.next_due_in()
            time.sleep(max(poll, min(wait, deadline - time.monotonic())))

    def next_due_in(self) -> float:
        """Seconds until the next pending event is due (0 when one is due now)."""
        now = self.clock()
        soonest: timedelta | None = None
        for box in self.outboxes:
            for item in box.pending(limit=1):
                gap = item.next_attempt_at - now
                soonest = gap if soonest is None else min(soonest, gap)
        return 0.0 if soonest is None else max(0.0, soonest.total_seconds())
