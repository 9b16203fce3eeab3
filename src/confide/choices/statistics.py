"""Opt-out statistics as open data: how many people hold each choice, by month and place.

For each month, a person counts towards a choice if the choice was in force at the end of that
month (so changes within a month show in that month), read from every channel's facts by the
channel rule table. Places are the practice and the postcode
district from the demographics table ("unknown" when not enrolled).

Published with the TRE's own disclosure rules (``confide.tre.rules``, the "opensafely" set, and
the cell-key method of ``confide.tre.cellkey``): every month, place and choice is a cell,
empty or not; a cell of fewer than 8 people is hidden, zero included, so the month a place's
first few people opt out looks like the month before; other cells are perturbed by a key that
depends on exactly who is in them (a repeat gives the same answer, one person more gives
independent noise) and rounded to 5. Totals are summed from the published cells (never from
the true counts, which could be recovered by subtraction otherwise).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from confide.choices import store
from confide.choices.channels import in_force
from confide.choices.model import Channel, Choice, utc
from confide.choices.registry import ChoicesRegistry
from confide.common.secrets import load_or_create
from confide.tre.cellkey import cell_key, record_keys
from confide.tre.disclosure import round_to
from confide.tre.rules import rule_set

RULES = rule_set("opensafely")  # the TRE's own rules: fewer than 8 hidden, rounded to 5
REDACT_AT_OR_BELOW = RULES.threshold - 1
ROUND_TO = RULES.rounding or 1
GROUPINGS = ("practice", "area")
UNKNOWN = "unknown"
TOTAL = "total"
KEY_FILE = "statistics.key"


def suppress(count: int) -> int | None:
    """The old rule without perturbation (kept for its test): None for counts ≤ 7, otherwise
    the count rounded to the nearest 5."""
    if count <= REDACT_AT_OR_BELOW:
        return None
    return round_to(count, ROUND_TO)


def protect(count: int, key_sum: int) -> int | None:
    """A published count, as the TRE publishes one: hidden below the threshold (zero too, so
    "nobody" and "a few" look alike), otherwise perturbed by the cell-key method (the same
    people always give the same answer; one more or fewer gives independent noise) and
    rounded."""
    if count < RULES.threshold:
        return None
    noisy = max(RULES.threshold, count + RULES.counts.perturbation(cell_key(key_sum)))
    return round_to(noisy, ROUND_TO)


def _record_key(secret: bytes, person_id: object) -> int:
    return record_keys(secret, f"choices-statistics:{person_id}").rkey


def _month_index(moment: datetime | date) -> int:
    return moment.year * 12 + moment.month - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _cells(
    registry: ChoicesRegistry, by: str, until: date | None, secret: bytes
) -> tuple[dict[tuple[str, str, str], tuple[int, int]], list[str], list[str]]:
    """True cells {(month, place, choice): (people, record-key sum)}, every month from the
    first change, and every place people are enrolled at (never published as they are)."""
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
    diff: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    first = last
    facts: dict[Channel, bool] = {}
    for i, (person, choice, channel, value, effective_at) in enumerate(rows):
        if i == 0 or rows[i - 1][:2] != (person, choice):
            facts = {}
        facts[Channel(channel)] = bool(value)  # the channel's latest fact so far
        if not in_force(facts):
            continue
        start = _month_index(utc(effective_at))
        first = min(first, start)
        stop = last + 1
        if i + 1 < len(rows) and rows[i + 1][:2] == (person, choice):
            stop = min(stop, _month_index(utc(rows[i + 1][4])))
        if start < stop:
            key = _record_key(secret, person)
            cell = diff[(places.get(person) or UNKNOWN, choice)]
            cell[start][0] += 1
            cell[start][1] += key
            cell[stop][0] -= 1
            cell[stop][1] -= key
    counts: dict[tuple[str, str, str], tuple[int, int]] = {}
    for (place, choice), changes in diff.items():
        people = keys = 0
        for month in range(min(changes), last + 1):
            people += changes[month][0] if month in changes else 0
            keys += changes[month][1] if month in changes else 0
            if people:
                counts[(_month_name(month), place, choice)] = (people, keys)
    months = [_month_name(m) for m in range(first, last + 1)] if rows else []
    known = sorted({str(p) for p in places.values() if p} | {place for _, place, _ in counts})
    return counts, months, known


def raw_counts(
    registry: ChoicesRegistry, by: str, until: date | None = None
) -> dict[tuple[str, str, str], int]:
    """True counts {(month, place, choice): people} (never published as they are)."""
    cells, _, _ = _cells(registry, by, until, b"")
    return {k: people for k, (people, _) in cells.items()}


def publishable(
    registry: ChoicesRegistry, by: str = "practice", until: date | None = None
) -> list[dict[str, Any]]:
    """Rows ready for the public dashboard: every month, place and choice (an empty cell is
    hidden like a small one, so a place's first opt-outs never make a cell appear), each
    protected as the TRE protects a count, and totals summed from the published cells only
    (so the hidden ones stay hidden)."""
    secret = (
        load_or_create(Path(registry.folder) / KEY_FILE, lambda: secrets.token_bytes(32))
        if registry.folder is not None
        else secrets.token_bytes(32)  # a registry without a folder (tests): keys for this run
    )
    cells, months, places = _cells(registry, by, until, secret)
    out: list[dict[str, Any]] = []
    for month in months:
        for choice in Choice:
            total = 0
            for place in places:
                people, keys = cells.get((month, place, choice.value), (0, 0))
                shown = protect(people, keys)
                total += shown or 0
                out.append(
                    {
                        "month": month,
                        by: place,
                        "choice": choice.value,
                        "people": shown,
                        "redacted": shown is None,
                    }
                )
            out.append(
                {
                    "month": month,
                    by: TOTAL,
                    "choice": choice.value,
                    "people": total,
                    "redacted": False,
                }
            )
    order = {c.value: i for i, c in enumerate(Choice)}
    out.sort(key=lambda r: (r["month"], r[by] == TOTAL, r[by], order.get(r["choice"], 9)))
    return out
