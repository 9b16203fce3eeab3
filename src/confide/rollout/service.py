"""The roll-out's operations: what operators and practices change, each change stored with its
history and written to the transparency log in the same call.

``Rollout`` needs the ledger (a port with ``append``): a roll-out that could not be seen in the
log would not be a roll-out at all, so there is no way to open it without one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any, Protocol

from confide.common.errors import InvalidInput, NotFound
from confide.common.home import Home
from confide.practice.keys import check_ods
from confide.rollout.model import Participation
from confide.rollout.store import Area, Practice, RolloutState, RolloutStore

_AREA_MAX = 40


class LedgerPort(Protocol):
    def append(self, kind: str, body: dict[str, Any]) -> int: ...


def _reason(reason: str | None, required: bool) -> str | None:
    text = (reason or "").strip()
    if required and not text:
        raise InvalidInput("Give a reason: it is published with the change.")
    if len(text) > 500 or not text.isprintable():
        raise InvalidInput("The reason must be one line of at most 500 characters.")
    return text or None


def _area_code(area: str) -> str:
    code = area.strip().upper()
    if not code or len(code) > _AREA_MAX or not code.replace("-", "").isalnum():
        raise InvalidInput(
            "An area code is letters, digits and hyphens (for example E54000050).",
        )
    return code


class Rollout:
    """Operators' and practices' roll-out decisions; see the module docstring."""

    def __init__(self, store: RolloutStore, ledger: LedgerPort) -> None:
        self.store = store
        self.ledger = ledger

    @classmethod
    def open(cls, home: Home, ledger: LedgerPort) -> Rollout:
        return cls(RolloutStore(home), ledger)

    def close(self) -> None:
        self.store.close()

    def state(self) -> RolloutState:
        return self.store.state()

    def _log(self, action: str, subject: str, **fields: Any) -> None:
        body = {"action": action, "subject": subject}
        body.update({k: v for k, v in fields.items() if v is not None})
        self.ledger.append("rollout", body)

    # --- national ---------------------------------------------------------------------------
    def start(self, *, role: str, weeks: int | None = None) -> None:
        """From now on only practices that joined, in areas that began, send anything."""
        values = {"started": "1"}
        if weeks is not None:
            values["waiting_weeks"] = str(_weeks(weeks))
        self.store.set_settings(values, action="started", actor=role)
        self._log("started", "national", role=role, weeks=weeks)

    def set_waiting_period(self, weeks: int, *, role: str, reason: str | None = None) -> None:
        checked = _weeks(weeks)
        why = _reason(reason, False)
        self.store.set_settings(
            {"waiting_weeks": str(checked)}, action="waiting_period", actor=role, reason=why
        )
        self._log("waiting_period", "national", role=role, weeks=checked, reason=why)

    def pause(self, reason: str, *, role: str) -> None:
        """Stop extraction, ingest and releases everywhere, at once, with a public reason."""
        why = _reason(reason, True)
        self.store.set_settings(
            {
                "national_paused": "1",
                "national_reason": why or "",
                "national_since": date.today().isoformat(),
            },
            action="national_paused",
            actor=role,
            reason=why,
        )
        self._log("national_paused", "national", role=role, reason=why)

    def resume(self, reason: str, *, role: str) -> None:
        why = _reason(reason, True)
        self.store.set_settings(
            {"national_paused": "0", "national_reason": "", "national_since": ""},
            action="national_resumed",
            actor=role,
            reason=why,
        )
        self._log("national_resumed", "national", role=role, reason=why)

    # --- areas and waves --------------------------------------------------------------------
    def set_area(self, area: str, *, name: str, wave: int, start_date: date, role: str) -> Area:
        """Create an area or move it to a wave with a published start date."""
        code = _area_code(area)
        if wave < 0 or wave > 1000:
            raise InvalidInput("A wave is a number from 0 (the pilot) upwards.")
        label = (name or code).strip()[:200]
        current = self.state().areas.get(code)
        row = Area(
            code,
            label,
            wave,
            start_date,
            current.paused if current else False,
            current.reason if current else None,
        )
        self.store.put_area(row, action="area_wave", actor=role)
        self._log("area_wave", code, role=role, wave=wave, start_date=start_date.isoformat())
        return row

    def pause_area(self, area: str, reason: str, *, role: str) -> None:
        self._area_switch(area, True, _reason(reason, True), role)

    def resume_area(self, area: str, reason: str, *, role: str) -> None:
        self._area_switch(area, False, _reason(reason, True), role)

    def _area_switch(self, area: str, paused: bool, why: str | None, role: str) -> None:
        code = _area_code(area)
        current = self.state().areas.get(code)
        if current is None:
            raise NotFound(f"There is no roll-out area {code}.")
        action = "area_paused" if paused else "area_resumed"
        self.store.put_area(replace(current, paused=paused, reason=why), action=action, actor=role)
        self._log(action, code, role=role, reason=why)

    # --- practices --------------------------------------------------------------------------
    def set_practice(
        self,
        ods: str,
        status: Participation | str,
        *,
        role: str,
        area: str | None = None,
        name: str | None = None,
        reason: str | None = None,
    ) -> Practice:
        """A practice joins, declines or pauses (a paused practice rejoins with ``joined``)."""
        code = check_ods(ods)
        decided = Participation(status)
        current = self.state().practices.get(code)
        area_code = _area_code(area) if area else (current.area if current else None)
        if decided is Participation.JOINED:
            if area_code is None:
                raise InvalidInput("A practice joins within an area: give --area.")
            if area_code not in self.state().areas:
                raise NotFound(f"There is no roll-out area {area_code}.")
        why = _reason(reason, decided is Participation.PAUSED)
        row = Practice(code, (name or (current.name if current else None)), area_code, decided, why)
        action = f"practice_{decided.value}"
        self.store.put_practice(row, action=action, actor=role)
        self._log(action, code, role=role, reason=why)
        return row

    # --- notices ----------------------------------------------------------------------------
    def publish_notices(self, practice: str, weeks: dict[date, Counter[str]]) -> int:
        """Publish a practice's notice figures per week (counts only); returns weeks logged."""
        code = check_ods(practice)
        self.store.set_notice_counts(code, {w: dict(c) for w, c in weeks.items()})
        for week, counts in sorted(weeks.items()):
            self._log(
                "notices",
                code,
                week=week.isoformat(),
                **{s: int(counts.get(s, 0)) for s in _NOTICE_FIELDS},
            )
        return len(weeks)


_NOTICE_FIELDS = ("sent", "delivered", "returned", "undeliverable")


def _weeks(weeks: int) -> int:
    if not isinstance(weeks, int) or weeks < 0 or weeks > 104:
        raise InvalidInput("The waiting period is a whole number of weeks, from 0 to 104.")
    return weeks
