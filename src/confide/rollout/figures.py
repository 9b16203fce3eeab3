"""The roll-out's public figures: what the public page, ``confide rollout status`` and
``/api/rollout`` show. Counts and switches only."""

from __future__ import annotations

from datetime import date
from typing import Any

from confide.rollout.gate import reason_stopped
from confide.rollout.model import Participation, Point
from confide.rollout.store import Practice, RolloutState, RolloutStore


def _practice_status(state: RolloutState, practice: Practice, day: date) -> str:
    """live, waiting (for its area's start), paused or declined."""
    if practice.status is not Participation.JOINED:
        return practice.status.value
    area = state.areas.get(practice.area or "")
    if state.national.paused or (area is not None and area.paused):
        return "paused"
    return (
        "live" if reason_stopped(state, Point.EXTRACTION, practice.ods, day) is None else "waiting"
    )


def public_figures(store: RolloutStore, today: date | None = None) -> dict[str, Any]:
    day = today or date.today()
    state = store.state()
    notices = store.notice_counts()
    held = store.held()
    areas = []
    for area in sorted(state.areas.values(), key=lambda a: (a.wave, a.area)):
        status = "paused" if area.paused else ("live" if day >= area.start_date else "waiting")
        areas.append(
            {
                "area": area.area,
                "name": area.name,
                "wave": area.wave,
                "start_date": area.start_date.isoformat(),
                "status": status,
                "reason": area.reason,
            }
        )
    practices = []
    for p in sorted(state.practices.values(), key=lambda p: p.ods):
        status = _practice_status(state, p, day)
        practices.append(
            {
                "ods": p.ods,
                "name": p.name,
                "area": p.area,
                "status": status,
                "notices": notices.get(p.ods, {}),
                "held_back": int(held.get(p.ods, {}).get("held_back", 0)),
                "held": held.get(p.ods, {}),
            }
        )
    return {
        "national": {
            "paused": state.national.paused,
            "reason": state.national.reason or None,
            "since": state.national.since or None,
        },
        "started": state.started,
        "waiting_weeks": state.waiting_weeks,
        "areas": areas,
        "practices": practices,
    }
