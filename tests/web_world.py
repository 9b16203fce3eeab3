"""A small, fully wired Confide home for the usage and register web tests.

Real parties throughout (``Installation.open``): practice extracts go through the practice
agent, the pseudonymiser and the hub; the demo organisations and approved projects are seeded
in access; every patient's identity facts are enrolled for the online identity check; the web
app is built exactly as ``confide serve`` builds it, with the usage report wired. A few hundred
patients keep it fast.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import uvicorn
from pipeline_helpers import World
from tre_world import population_extract
from web_seed import Person

from confide.access.seed import PEOPLE, PROJECTS, seed_demo
from confide.choices.identity import IdentityConfig, IdentityService
from confide.common.home import Home
from confide.embedded import Installation
from confide.tre.outcomes import QueryOutcome
from confide.usage.report import (
    CONTRIBUTORS,
    EXCLUDED,
    is_member,
    membership_digest,
    parse_members,
    release_salt,
)
from confide.web.cli import installation_app

COUNT_SQL = "SELECT count(DISTINCT patient_id) AS n FROM patients"
LENIENT = IdentityConfig(min_seconds=0, person_starts=10**6, client_starts=10**6, failures=10**6)


@dataclass
class WebWorld:
    parties: Installation
    identity: IdentityService
    people: list[Person] = field(default_factory=list)

    @property
    def home(self) -> Home:
        return self.parties.home

    @property
    def registry(self):  # type: ignore[no-untyped-def]
        return self.parties.choices

    def app(self, **options):  # type: ignore[no-untyped-def]
        """The web app as ``confide serve`` builds it over these parties."""
        options.setdefault("demo", True)
        return installation_app(self.parties, identity=self.identity, **options)

    # --- the TRE ------------------------------------------------------------------------
    def query(self, project: str, sql: str = COUNT_SQL) -> QueryOutcome:
        """Run ``sql`` as the project's applicant, through the real query service."""
        org, _, email, _ = PEOPLE[PROJECTS[project][0]]
        principal = self.parties.access.principal_for(org, email)
        return self.parties.service.run(principal, project, sql)

    def pseudonym(self, person: Person) -> str:
        found = self.parties.pseudonymiser.pseudonyms_for([person.nhs_number])[0]
        assert found is not None
        return found

    def in_release(self, release_id: str, person: Person, part: str) -> bool:
        """Whether ``person`` is in the release's ``contributors`` or ``excluded`` file (the
        TRE's contract: SHA-256 of the release's salt, or of its id when it has no salt file,
        ":" the person's hub pseudonym)."""
        assert part in (CONTRIBUTORS, EXCLUDED)
        folder = self.parties.tre_store.releases
        salt_file = folder / f"{release_id}.salt"
        salt = release_salt(release_id, salt_file.read_bytes() if salt_file.exists() else None)
        assert salt is not None
        data = (folder / f"{release_id}.{part}").read_bytes()
        return is_member(parse_members(data), membership_digest(salt, self.pseudonym(person)))

    # --- the patient's messages -----------------------------------------------------------
    @property
    def outbox(self) -> Path:
        return self.home.root / "outbox"

    def messages(self) -> list[dict]:
        if not self.outbox.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.outbox.glob("*.json"))]

    def latest_code(self) -> str:
        return next(m["code"] for m in reversed(self.messages()) if "code" in m)

    def close(self) -> None:
        self.parties.close()


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def build_world(root: Path, *, practices: int = 2, patients: int = 150, seed: int = 11) -> WebWorld:
    """Ingest ``practices`` × ``patients`` synthetic patients and seed the demo projects."""
    parties = Installation.open(Home.at(root))
    pipeline = World(parties.home, parties.pseudonymiser, parties.hub)
    people: list[Person] = []
    for p in range(practices):
        ods = f"B8{6001 + p}"
        extract, _ = population_extract(ods, patients, seed + p)
        parties.hub.ingest(pipeline.submit(extract))
        rows = extract.table("patients").to_pylist()
        people.extend(
            Person(
                nhs_number=r["nhs_number"],
                birth_date=_as_date(r["birth_date"]),
                postcode=r["postcode"],
                practice=ods,
                contact=f"patient{len(people) + i}@example.org",
            )
            for i, r in enumerate(rows)
        )
    parties.choices.enrol_demographics(
        [(p.nhs_number, p.birth_date, p.postcode, p.practice, None, p.contact) for p in people]
    )
    seed_demo(parties.access)
    identity = IdentityService.open(parties.choices, parties.home.root, config=LENIENT)
    return WebWorld(parties, identity, people)


@contextlib.contextmanager
def served(app, port: int) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("The web app did not start.")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
