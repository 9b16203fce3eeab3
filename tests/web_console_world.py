"""A small, fully wired Confide installation for the staff console tests.

Real parties throughout (``Installation.open``): practice extracts go through the practice
agent, the pseudonymiser and the hub; the demo organisations, people and approved projects
are seeded in access; access decisions and TRE outcomes reach the ledger through the same
wiring ``confide serve`` uses. Staff sign in as a person would: email, then the code from the
outbox.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pipeline_helpers import World
from tre_world import population_extract
from web_seed import csrf_of

from confide.access.seed import PEOPLE, seed_demo
from confide.access.signin import SignInConfig
from confide.choices.identity import mask
from confide.common.home import Home
from confide.embedded import Installation
from confide.web.app import create_app
from confide.web.pages.staff_context import STAFF, StaffConsole

LENIENT = SignInConfig(min_seconds=0, email_starts=10**6, client_starts=10**6, failures=10**6)
# People by sex (about 30 each: released, perturbed), and those born before 1940 (a few of
# each sex: suppressed, with the reason).
SMALL_CELLS_SQL = (
    "SELECT p.sex, count(DISTINCT p.patient_id) AS patients, "
    "count(DISTINCT p.patient_id) FILTER (WHERE p.birth_year < 1940) AS born_before_1940 "
    "FROM patients p GROUP BY 1"
)
TOTAL_SQL = "SELECT count(DISTINCT p.patient_id) AS patients FROM patients p"
COUNT_SQL = "SELECT p.sex, count(DISTINCT p.patient_id) AS patients FROM patients p GROUP BY 1"
# The same table a second time, once one person has left the project: it differs from the
# first release by that person, so it waits for two output checkers.
HELD_SQL = COUNT_SQL


@dataclass
class ConsoleWorld:
    parties: Installation
    numbers: list[str] = field(default_factory=list)

    @property
    def home(self) -> Home:
        return self.parties.home

    @property
    def outbox(self) -> Path:
        return self.home.root / "outbox"

    def app(self, *, demo: bool = True, config: SignInConfig | None = LENIENT) -> FastAPI:
        """The web app exactly as ``confide serve`` builds it over these parties."""
        app = create_app(
            self.home,
            registry=self.parties.choices,
            ledger=self.parties.ledger,
            access=self.parties.access,
            demo=demo,
            queries=self.parties.service,
            review=self.parties.review,
        )
        if config is not None:
            staff_console(app).signin.config = config
        return app

    def latest_code(self, email: str) -> str:
        """The newest code in the outbox addressed (masked) to ``email``."""
        files = sorted(self.outbox.glob("*.json"))
        for path in reversed(files):
            message = json.loads(path.read_text())
            if message.get("to") == mask(email) and "code" in message:
                return message["code"]
        raise AssertionError("no code was sent to that address")

    def principal(self, key: str):  # type: ignore[no-untyped-def]
        org, _, email, _ = PEOPLE[key]
        return self.parties.access.principal_for(org, email)

    def leave(self, person: int, project: str = "demo-research") -> None:
        """One person leaves ``project`` (a choice), so the next run of a released table
        differs from it by one person."""
        choice = {"demo-research": "no_research", "demo-planning": "no_planning"}[project]
        self.parties.choices.set(self.numbers[person], {choice: True}, "online")

    def come_back(self, person: int, project: str = "demo-research") -> None:
        choice = {"demo-research": "no_research", "demo-planning": "no_planning"}[project]
        self.parties.choices.set(self.numbers[person], {choice: False}, "online")

    def held(self, key="researcher", project="demo-research", person=0):  # type: ignore[no-untyped-def]
        """An output held for the checkers (see ``HELD_SQL``), run as ``key``."""
        service, who = self.parties.service, self.principal(key)
        service.run(who, project, HELD_SQL)
        self.leave(person, project)
        try:
            outcome = service.run(who, project, HELD_SQL)
        finally:
            self.come_back(person, project)
        assert outcome.status == "held_for_review", outcome.reason
        return outcome

    def ledger_kinds(self, since: int) -> list[str]:
        head = self.parties.ledger.head().size
        return [e.kind for e in self.parties.ledger.decoded(since, head)] if head > since else []

    def close(self) -> None:
        self.parties.close()


def staff_console(app: FastAPI) -> StaffConsole:
    return app.state.confide.extra[STAFF]


def build_console_world(root: Path, *, practices: int = 1, patients: int = 60) -> ConsoleWorld:
    home = Home.at(root)
    parties = Installation.open(home)
    world = World(home, parties.pseudonymiser, parties.hub)
    numbers: list[str] = []
    for i in range(practices):
        extract, made = population_extract(f"B8{7001 + i}", patients, 11 + i)
        numbers.extend(made)
        parties.hub.ingest(world.submit(extract, out=home.root / "submissions"))
    seed_demo(parties.access)
    return ConsoleWorld(parties, numbers)


# --- in-process HTTP ------------------------------------------------------------------------


def email_of(key: str) -> str:
    return PEOPLE[key][2]


def sign_in(http, world: ConsoleWorld, email: str, organisation: str | None = None) -> str:
    """Sign in as the person with ``email`` (choosing ``organisation`` if asked); returns the
    session's CSRF token."""
    token = csrf_of(http.get("/staff/sign-in").text)
    started = http.post("/staff/sign-in", data={"csrf_token": token, "email": email})
    assert started.status_code == 200 and "Enter your code" in started.text, started.text[:300]
    done = http.post("/staff/code", data={"csrf_token": token, "code": world.latest_code(email)})
    assert done.status_code == 200, done.text[:500]
    token = csrf_of(done.text)  # a new token: it is rotated at sign-in
    if organisation is not None:
        chosen = http.post(
            "/staff/organisation", data={"csrf_token": token, "organisation": organisation}
        )
        assert chosen.status_code == 200, chosen.text[:500]
    return token


# --- a real server for the browser ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free localhost port, in a thread, for the block."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
