"""Opt-out statistics as open data: how many people hold each choice, by month and place.

For each month, a person counts towards a choice if the choice was in force at the end of that
month (so changes within a month show in that month), read from every channel's facts by the
channel rule table. Places are the practice and the postcode
district from the demographics table ("unknown" when not enrolled).

Small numbers are never published: every cell ≤ 7 is redacted and every other cell rounded to
the nearest 5; totals are recomputed from the rounded, unredacted cells (never from the true
counts, which could be recovered by subtraction otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from confide.choices import store
from confide.choices.channels import in_force
from confide.choices.model import Channel, Choice, utc
from confide.choices.registry import ChoicesRegistry

REDACT_AT_OR_BELOW = 7
ROUND_TO = 5
GROUPINGS = ("practice", "area")
UNKNOWN = "unknown"
TOTAL = "total"


def suppress(count: int) -> int | None:
    """None for counts ≤ 7; otherwise the count rounded to the nearest 5 (halves round up)."""
    if count <= REDACT_AT_OR_BELOW:
        return None
    return (count + ROUND_TO // 2) // ROUND_TO * ROUND_TO


def _month_index(moment: datetime | date) -> int:
    return moment.year * 12 + moment.month - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def raw_counts(
    registry: ChoicesRegistry, by: str, until: date | None = None
) -> dict[tuple[str, str, str], int]:
    """True counts {(month, place, choice): people} (never published as they are)."""
    if by not in GROUPINGS:
        raise ValueError(f"group by one of {GROUPINGS}")
    ev, dm = store.choice_events, store.demographics
    column = dm.c.practice if by == "practice" else dm.c.district
    with registry.engine.connect() as conn:
        places = {p: g for p, g in conn.execute(select(dm.c.person_id, column))}
        rows = conn.execute(
            select(
                ev.c.person_id, ev.c.choice, ev.c.channel, ev.c.value, ev.c.effective_at
            ).order_by(ev.c.person_id, ev.c.choice, ev.c.effective_at, ev.c.seq)
        ).all()
    last = _month_index(until or utc(None).date())
    diff: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    facts: dict[Channel, bool] = {}
    for i, (person, choice, channel, value, effective_at) in enumerate(rows):
        if i == 0 or rows[i - 1][:2] != (person, choice):
            facts = {}
        facts[Channel(channel)] = bool(value)  # the channel's latest fact so far
        if not in_force(facts):
            continue
        start = _month_index(utc(effective_at))
        stop = last + 1
        if i + 1 < len(rows) and rows[i + 1][:2] == (person, choice):
            stop = min(stop, _month_index(utc(rows[i + 1][4])))
        if start < stop:
            cell = diff[(places.get(person) or UNKNOWN, choice)]
            cell[start] += 1
            cell[stop] -= 1
    counts: dict[tuple[str, str, str], int] = {}
    for (place, choice), changes in diff.items():
        running = 0
        for month in range(min(changes), last + 1):
            running += changes.get(month, 0)
            if running:
                counts[(_month_name(month), place, choice)] = running
    return counts


def publishable(
    registry: ChoicesRegistry, by: str = "practice", until: date | None = None
) -> list[dict[str, Any]]:
    """Rows ready for the public dashboard: suppressed cells plus recomputed totals."""
    counts = raw_counts(registry, by, until)
    out: list[dict[str, Any]] = []
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (month, place, choice), count in sorted(counts.items()):
        shown = suppress(count)
        out.append(
            {
                "month": month,
                by: place,
                "choice": choice,
                "people": shown,
                "redacted": shown is None,
            }
        )
        totals[(month, choice)] += shown or 0
    for (month, choice), total in sorted(totals.items()):
        out.append(
            {"month": month, by: TOTAL, "choice": choice, "people": total, "redacted": False}
        )
    order = {c.value: i for i, c in enumerate(Choice)}
    out.sort(key=lambda r: (r["month"], r[by] == TOTAL, r[by], order.get(r["choice"], 9)))
    return out
