"""A small real Confide installation for TRE tests: practices → pseudonymiser → hub, choices,
access (the demo organisations and projects), ledger and the TRE services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from pipeline_helpers import World, make_world

from confide.access.seed import PEOPLE, seed_demo
from confide.access.service import Access
from confide.choices.registry import ChoicesRegistry
from confide.common.nhs_number import generate_test_numbers
from confide.ledger.log import Ledger
from confide.practice.model import EXTRACT_SCHEMAS, Extract
from confide.tre.review import ReviewQueue
from confide.tre.service import QueryService
from confide.tre.store import TreStore
from confide.tre.wiring import query_service, review_queue

DIABETES = "44054006"
ASTHMA = "195967001"
HBA1C = "1049301000000100"
METFORMIN = "39720311000001101"
CODES = (DIABETES, ASTHMA, HBA1C)


def population_extract(source: str, patients: int, seed: int) -> tuple[Extract, list[str]]:
    """A random practice population: sex, birth years, events (2012-2024), medications."""
    rng = np.random.default_rng(seed)
    numbers = generate_test_numbers(patients, rng).tolist()
    ids = [f"{source}-{i}" for i in range(patients)]
    years = rng.integers(1930, 2015, patients)
    people = pa.table(
        {
            "local_id": ids,
            "nhs_number": numbers,
            "birth_date": [f"{y}-{rng.integers(1, 13):02d}-15" for y in years],
            "postcode": [f"LS{1 + i % 9} {i % 10}AB" for i in range(patients)],
            "sex": rng.choice(["female", "male"], patients).tolist(),
            "death_date": [None] * patients,
        },
        schema=EXTRACT_SCHEMAS["patients"],
    )
    events, meds = [], []
    start = date(2012, 1, 1)
    for pid in ids:
        for _ in range(int(rng.integers(1, 4))):
            when = start + timedelta(days=int(rng.integers(0, 12 * 365)))
            code = str(rng.choice(CODES))
            value = float(rng.integers(30, 90)) if code == HBA1C else None
            events.append((pid, "condition", "snomed", code, when, value, None))
            if code == DIABETES and rng.random() < 0.6:
                later = when + timedelta(days=int(rng.integers(1, 200)))
                meds.append((pid, "dmd", METFORMIN, later, 56.0, "tablet"))
    names = EXTRACT_SCHEMAS["events"].names
    events = [r + (None,) * (len(names) - len(r)) for r in events]  # later columns: none
    ev = pa.Table.from_pylist(
        [dict(zip(EXTRACT_SCHEMAS["events"].names, r, strict=False)) for r in events],
        schema=EXTRACT_SCHEMAS["events"],
    )
    md = pa.Table.from_pylist(
        [dict(zip(EXTRACT_SCHEMAS["medications"].names, r, strict=True)) for r in meds],
        schema=EXTRACT_SCHEMAS["medications"],
    )
    regs = pa.table(
        {
            "local_id": ids,
            "practice": [source] * patients,
            "start_date": [date(2005, 1, 1)] * patients,
            "end_date": [None] * patients,
        },
        schema=EXTRACT_SCHEMAS["registrations"],
    )
    tables = {"patients": people, "events": ev, "medications": md, "registrations": regs}
    return Extract(source=source, kind="practice", tables=tables), numbers


@dataclass
class TreWorld:
    world: World
    registry: ChoicesRegistry
    access: Access
    ledger: Ledger
    store: TreStore
    service: QueryService
    review: ReviewQueue
    numbers: list[str]
    people: dict[str, dict] = field(default_factory=dict)  # NHS number -> patients row

    def sex_of(self, number: str) -> str:
        return str(self.people[number]["sex"])

    @property
    def home(self):  # type: ignore[no-untyped-def]
        return self.world.home

    def principal(self, key: str):  # type: ignore[no-untyped-def]
        org, _, email, _ = PEOPLE[key]
        return self.access.principal_for(org, email)

    def close(self) -> None:
        self.store.close()
        self.ledger.close()
        self.registry.close()
        self.access.close()
        self.world.close()


def build(root: Path, practices: int = 2, patients: int = 60, seed: int = 7) -> TreWorld:
    world = make_world(root)
    numbers: list[str] = []
    people: dict[str, dict] = {}
    for i in range(practices):
        extract, made = population_extract(f"B8{6001 + i}", patients, seed + i)
        world.hub.ingest(world.submit(extract))
        numbers.extend(made)
        for row in extract.tables["patients"].to_pylist():
            people[row["nhs_number"]] = row
    registry = ChoicesRegistry.open(world.home)
    access = Access.open(world.home)
    seed_demo(access)
    ledger = Ledger.open(world.home)
    store = TreStore.open(world.home)
    service = query_service(
        world.home,
        access=access,
        registry=registry,
        pseudonymiser=world.pseudonymiser,
        records=world.hub.records,
        ledger=ledger,
        store=store,
    )
    return TreWorld(
        world, registry, access, ledger, store, service, review_queue(service), numbers, people
    )


BY_SEX = "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.sex"
_LEAVES = {"demo-research": "no_research", "demo-planning": "no_planning"}


def hold(service, registry, principal, project, number, sql=BY_SEX):  # type: ignore[no-untyped-def]
    """An output held for the checkers, made the way a differencing attempt is: the same
    table before and after one person's choice leaves them out (their choice is restored)."""
    service.run(principal, project, sql)
    choice = _LEAVES[project]
    registry.set(number, {choice: True}, "online")
    try:
        held = service.run(principal, project, sql)
    finally:
        registry.set(number, {choice: False}, "online")
    assert held.status == "held_for_review", held.reason
    return held
