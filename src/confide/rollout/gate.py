"""The one gate every data movement passes: extraction, ingest and release each call
:func:`check` before anything moves, so no entry point (CLI, Python, HTTP, web) can skip it.

The gate reads the roll-out's switches as they are now: the national pause, the practice's
participation, its area's pause and wave start date. Until operators start the roll-out
(``confide rollout start``) a practice that never joined is treated as before the programme;
from then on only practices that joined, in areas whose wave has begun, move data.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from confide.common.errors import SubmissionRejected
from confide.common.home import Home
from confide.rollout.model import Participation, Point
from confide.rollout.store import RolloutState, RolloutStore

FAIR_PROCESSING_KEY = "notice_waiting_weeks"  # stamped in a submission's counts by the agent


class RolloutStopped(SubmissionRejected):
    """Data may not move now: a pause, a practice that declined or has not joined, or an area
    whose wave has not begun. Refused in full; nothing is half-done."""


def reason_stopped(
    state: RolloutState, point: Point, source: str | None, today: date
) -> str | None:
    """Why data may not move at ``point`` for ``source`` (None: it may). Pure, so the rule is
    tested apart from any store."""
    if state.national.paused:
        return f"Confide is paused nationally ({state.national.reason or 'no reason given'})."
    if source is None:
        return None
    practice = state.practices.get(source)
    if practice is None:
        if state.started:
            return f"Source {source} has not joined the roll-out."
        return None
    if practice.status is Participation.DECLINED:
        return f"Source {source} has declined to take part."
    if practice.status is Participation.PAUSED:
        return f"Source {source} has paused its participation."
    area = state.areas.get(practice.area or "")
    if area is None:
        return f"Source {source} is in no roll-out area yet."
    if area.paused:
        return f"Area {area.area} is paused ({area.reason or 'no reason given'})."
    if today < area.start_date:
        return f"Area {area.area} starts on {area.start_date.isoformat()}."
    return None


def applies_fair_processing(state: RolloutState, source: str) -> bool:
    """Whether the source's patients must be told and wait before their rows leave."""
    return state.started or source in state.practices


def read_state(home: Home) -> RolloutState:
    store = RolloutStore(home)
    try:
        return store.state()
    finally:
        store.close()


def publish_held(home: Home, source: str, counts: dict[str, int]) -> None:
    """Tell the roll-out how many people the source's latest extract held back (counts)."""
    store = RolloutStore(home)
    try:
        store.set_held(source, counts)
    finally:
        store.close()


def check(
    home: Home | None,
    point: Point,
    source: str | None = None,
    *,
    today: date | None = None,
    manifest: dict[str, Any] | None = None,
) -> RolloutState:
    """Raise :class:`RolloutStopped` if data may not move at ``point`` now; return the state
    read. At ingest, a joined practice's submission must also carry the agent's stamp that the
    waiting period was applied (at least the weeks configured now)."""
    if home is None:
        raise RolloutStopped(
            "The roll-out's switches cannot be read here (no installation was given).",
            hint="Open the service through the installation (confide.embedded).",
        )
    state = read_state(home)
    why = reason_stopped(state, point, source, today or date.today())
    if why is not None:
        raise RolloutStopped(why, hint=_hint(point))
    if point is Point.INGEST and source is not None and applies_fair_processing(state, source):
        stamped = ((manifest or {}).get("counts") or {}).get(FAIR_PROCESSING_KEY)
        if not isinstance(stamped, int) or stamped < state.waiting_weeks:
            raise RolloutStopped(
                f"This submission from {source} does not show that patients were told and "
                f"waited {state.waiting_weeks} weeks.",
                hint="Update the practice agent and extract again.",
            )
    return state


def _hint(point: Point) -> str:
    return {
        Point.EXTRACTION: "Nothing was extracted. Try again when the roll-out page shows the "
        "practice as live.",
        Point.INGEST: "The submission was kept, not ingested. Send it again when live.",
        Point.RELEASE: "Nothing was run or released. Run the query again when resumed.",
    }[point]


def release_stopped(home: Home | None, sources: Any = ()) -> str | None:
    """Why no query may run towards a release now (None: it may). ``sources``: the sources
    whose data the record store holds. Every query reads every source, so while any of them
    (or its area) is paused or has declined, releases stop."""
    try:
        state = check(home, Point.RELEASE)
    except RolloutStopped as stopped:
        return f"releases are paused: {stopped.message}"
    for source in sorted(sources):
        why = _source_paused(state, source)
        if why is not None:
            return f"releases are paused: {why}"
    return None


def _source_paused(state: RolloutState, source: str) -> str | None:
    practice = state.practices.get(source)
    if practice is None:
        return None
    if practice.status is not Participation.JOINED:
        return f"source {source}'s participation is {practice.status.value}"
    area = state.areas.get(practice.area or "")
    if area is not None and area.paused:
        return f"area {area.area} is paused ({area.reason or 'no reason given'})"
    return None
