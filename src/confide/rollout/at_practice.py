"""The roll-out at the practice agent: the gate, then the waiting period, before sealing.

The agent knows who its patients are, so it alone decides whose rows wait; what leaves is the
rows of people who may leave and the numbers held back by reason. A person held back gets no
ref in the submission at all (unless they object under type 1: their objection still travels,
with no rows), so the hub cannot tell who was held.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from confide.common.home import Home
from confide.practice.minimise import SUBMITTED, Minimised
from confide.rollout import gate
from confide.rollout.model import Point
from confide.rollout.notices import NoticeRegister
from confide.rollout.waiting import Held, held

HELD_KEYS = tuple(f"held_{reason.value}" for reason in Held)
HELD_OUTCOME = "held back: not yet told, or waiting"


def admit(
    home: Home, ods: str, minimised: Minimised, today: date | None = None
) -> tuple[Minimised, dict[str, int]]:
    """Raise if the practice may not extract now; else the rows that may leave, and counts of
    people held back (``held_back`` and one per reason) plus the waiting period applied."""
    day = today or date.today()
    state = gate.check(home, Point.EXTRACTION, ods, today=day)
    if not gate.applies_fair_processing(state, ods):
        return minimised, {}
    with NoticeRegister(home) as register:
        records = register.records(ods)
    identities = minimised.identities
    numbers = identities.column("nhs_number").to_pylist()
    objects = identities.column("type1").to_pylist()
    reasons: Counter[str] = Counter()
    keep: list[bool] = []
    for number, type1 in zip(numbers, objects, strict=True):
        why = held(records.get(number or ""), state.waiting_weeks, day)
        if why is not None and type1 != "dissent":
            reasons[f"held_{why.value}"] += 1
        keep.append(why is None or type1 == "dissent")
    mask = pa.array(keep, pa.bool_())
    kept = identities.filter(mask)
    refs = kept.column("ref")
    tables = {
        name: table.filter(pc.is_in(table.column("ref"), value_set=refs))
        for name, table in minimised.tables.items()
    }
    accounts = _accounted(minimised, tables, sum(reasons.values()))
    counts = {key: reasons.get(key, 0) for key in HELD_KEYS}
    counts["held_back"] = sum(reasons.values())
    counts[gate.FAIR_PROCESSING_KEY] = state.waiting_weeks
    gate.publish_held(home, ods, counts)
    return replace(minimised, identities=kept, tables=tables, accounts=accounts), counts


def _accounted(
    before: Minimised, tables: dict[str, pa.Table], people: int
) -> dict[str, dict[str, int]]:
    """The minimisation's accounts with held-back rows moved from ``submitted`` to their own
    outcome, so every input still ends in exactly one place."""
    accounts = {name: dict(outcomes) for name, outcomes in before.accounts.items()}
    moved = {name: before.tables[name].num_rows - tables[name].num_rows for name in tables}
    moved["patients"] = people
    for name, rows in moved.items():
        if rows and name in accounts and accounts[name].get(SUBMITTED, 0) >= rows:
            accounts[name][SUBMITTED] -= rows
            accounts[name][HELD_OUTCOME] = rows
    return accounts
