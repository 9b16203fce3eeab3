"""A home for roll-out tests: one live practice in a live area, a CSV export of known people,
and the whole path (extract -> ingest) through the parties' public entry points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.hub.ingest import Hub
from confide.ledger.log import Ledger
from confide.practice import keys
from confide.pseudonymiser import Pseudonymiser
from confide.rollout.service import Rollout

ODS = "A81001"
AREA = "E54000050"
PILOT_START = date(2024, 1, 1)
EVENTS_HEADER = "patient_id,date,kind,system,code,term,value,unit,note\n"


def write_export(folder: Path, numbers: list[str], dissent: frozenset[int] = frozenset()) -> Path:
    """A CSV export: person i has NHS number ``numbers[i]`` and two coded events; those in
    ``dissent`` also carry the type 1 code."""
    folder.mkdir(parents=True, exist_ok=True)
    patients = ["patient_id,nhs_number,birth_date,sex,postcode,date_of_death"]
    events = [EVENTS_HEADER.strip()]
    regs = ["patient_id,practice_ods,start_date,end_date"]
    for i, number in enumerate(numbers):
        patients.append(f"p{i},{number},{1950 + i % 50}-0{1 + i % 9}-1{i % 9},female,LS1 1AA,")
        events.append(f"p{i},2020-01-01,condition,snomed,44054006,,,,")
        events.append(f"p{i},2021-01-01,observation,snomed,1049301000000100,,48,mmol/mol,")
        if i in dissent:
            events.append(f"p{i},2019-05-01,observation,snomed,827241000000103,,,,")
        regs.append(f"p{i},{ODS},2010-01-01,")
    (folder / "patients.csv").write_text("\n".join(patients) + "\n")
    (folder / "events.csv").write_text("\n".join(events) + "\n")
    (folder / "registrations.csv").write_text("\n".join(regs) + "\n")
    return folder


def nhs_numbers(n: int, seed: int = 7) -> list[str]:
    return generate_test_numbers(n, np.random.default_rng(seed)).tolist()


@dataclass
class RolloutWorld:
    home: Home
    ledger: Ledger
    rollout: Rollout
    pseudonymiser: Pseudonymiser
    hub: Hub

    @classmethod
    def open(cls, root: Path, *, join: bool = True) -> RolloutWorld:
        home = Home.at(root)
        ledger = Ledger.open(home)
        rollout = Rollout.open(home, ledger)
        # Nobody shares nothing and no type 1 code is routed: the roll-out is what is tested.
        pseudonymiser = Pseudonymiser.open(
            home, shares_nothing=lambda numbers: [False] * len(numbers), on_type1=lambda c: None
        )
        hub = Hub(home, pseudonymiser)
        hub.enrol(ODS, "practice", keys.verify_key(home, ODS))
        world = cls(home, ledger, rollout, pseudonymiser, hub)
        if join:
            rollout.set_area(AREA, name="Pilot area", wave=0, start_date=PILOT_START, role="op")
            rollout.set_practice(ODS, "joined", role="practice", area=AREA)
        return world

    def close(self) -> None:
        self.hub.close()
        self.pseudonymiser.close()
        self.rollout.close()
        self.ledger.close()

    def extract(self, export: Path, today: date | None = None, out: Path | None = None):
        from confide.practice.agent import extract

        return extract(
            export, self.home, self.pseudonymiser.public_key(), source=ODS, out=out, today=today
        )

    def people_at_hub(self, numbers: list[str]) -> set[str]:
        """Which of ``numbers`` have any row in the hub's record store."""
        pseudonyms = dict(zip(self.pseudonymiser.pseudonyms_for(numbers), numbers, strict=True))
        con = self.hub.records.connect()
        held = set()
        for table in ("patient_sources", "events", "registrations"):
            try:
                rows = con.execute(f"SELECT DISTINCT pseudonym FROM {table}").fetchall()
            except Exception:  # a table not yet written has no view
                continue
            held |= {pseudonyms[p] for (p,) in rows if p in pseudonyms}
        return held
