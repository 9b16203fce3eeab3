"""The promises, through every entry point: one suite, run on each way in.

Each test takes an ``entry`` (the Python API, the ``confide`` command in its own process, or
the HTTP API) and asks it to do what a person would; the checks read the installation's own
stores. An entry point that has no way to do something (the HTTP API does not ingest) skips
that step by raising :class:`NotOffered`, and the test says so.

To add an entry point, write a class with the methods of :class:`Entry` and add it to
``ENTRIES``; to add a promise, write a test taking ``world`` and ``entry``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import pytest
from factories import small_extract
from services_world import deployed
from submit_helpers import confide, ledger_kinds, pseudonyms_in_hub, write_extract

from confide.access.model import ProjectApplication
from confide.access.seed import seed_demo
from confide.common.home import Home
from confide.composition import Composition, compose
from confide.services import deployment

GP, TRUST, PATIENTS, SEED = "B86001", "RR8", 60, 21
BY_SEX = "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.sex"
GP_TOKEN = "gp-system-token-for-tests"


class NotOffered(Exception):
    """This entry point has no way to do that."""


class Entry(Protocol):
    name: str

    def set_choices(self, nhs_number: str, changes: dict[str, bool]) -> None: ...
    def gp_type1(self, nhs_number: str, extract_folder: Path | None) -> None: ...
    def ingest(self, folder: Path) -> None: ...
    def query(self, project: str, sql: str) -> str: ...  # the query's id
    def reject(self, slug: str, reason: str) -> None: ...


@dataclass
class World:
    home: Path
    people: list[dict[str, Any]]  # the GP's patients rows
    tokens: dict[str, str]  # demo person key → bearer token
    draft: str  # a submitted project waiting for a decision

    def parties(self) -> Composition:
        return compose(Home.at(self.home))

    def pending(self) -> int:
        """Events still waiting in any party's outbox (read from each party's own store)."""
        with Composition(Home.at(self.home)) as stores:
            return sum(box.counts()["pending"] for box in stores.outboxes)

    def person(self, i: int) -> dict[str, Any]:
        return self.people[i]


# -- the world: a GP and a trust with the same people, the demo's organisations and projects --
def _build(root: Path) -> dict[str, Any]:
    gp = small_extract(source=GP, patients=PATIENTS, seed=SEED)
    trust = small_extract(source=TRUST, kind="trust", patients=PATIENTS, seed=SEED)
    with compose(Home.at(root)) as parties:
        for extract in (gp, trust):
            parties.hub.ingest(write_extract(parties, extract))
        seeded = seed_demo(parties.access)
        people = gp.table("patients").to_pylist()
        parties.choices.enrol_demographics(
            [(p["nhs_number"], p["birth_date"], p["postcode"], GP, None, None) for p in people]
        )
        researcher = parties.access.authenticate(
            seeded["credentials"]["researcher"]["access_token"]
        )
        draft = parties.access.apply(
            researcher,
            ProjectApplication(
                title="Waiting times and outcomes",
                purpose="research",
                legal_basis="public_task",
                datasets={"patients": ["*"]},
                window_start=date(2015, 1, 1),
                window_end=date(2024, 12, 31),
                expires_on=date(2030, 1, 1),
            ),
        )
        parties.access.submit(researcher, draft.slug)
    tokens = {k: v["access_token"] for k, v in seeded["credentials"].items()}
    return {"people": people, "tokens": tokens, "draft": draft.slug}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("promises") / "home"
    return root, _build(root)


# The transports every promise runs on: the parties in this process, or each party its own
# service on loopback (``confide up`` over a copy of the world; commands and checks reach the
# parties through its services).
TRANSPORTS = ("in-process", "services")


@pytest.fixture(params=TRANSPORTS)
def world(request, template, tmp_path, monkeypatch) -> Iterator[World]:
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)  # the template is on SQLite
    root, facts = template
    home = tmp_path / "home"
    shutil.copytree(root, home)
    made = World(home, facts["people"], facts["tokens"], facts["draft"])
    if request.param == "in-process":
        yield made
        return
    with deployed(home):
        with made.parties() as parties:
            assert all(parties.is_remote(p) for p in deployment.REACHABLE)
        yield made


# -- entry points -----------------------------------------------------------------------------
class PythonEntry:
    name = "python"

    def __init__(self, world: World) -> None:
        self.world = world

    def set_choices(self, nhs_number: str, changes: dict[str, bool]) -> None:
        with self.world.parties() as parties:
            parties.choices.set(nhs_number, changes, "online")

    def gp_type1(self, nhs_number: str, extract_folder: Path | None) -> None:
        assert extract_folder is not None
        self.ingest(extract_folder)

    def ingest(self, folder: Path) -> None:
        with self.world.parties() as parties:
            parties.hub.ingest(folder)

    def query(self, project: str, sql: str) -> str:
        with self.world.parties() as parties:
            principal = parties.access.authenticate(self.world.tokens["researcher"])
            return parties.service.run(principal, project, sql).id

    def reject(self, slug: str, reason: str) -> None:
        with self.world.parties() as parties:
            parties.access.reject(
                parties.access.authenticate(self.world.tokens["approver"]), slug, reason
            )


class CliEntry:
    name = "cli"

    def __init__(self, world: World) -> None:
        self.world = world

    def _run(self, *args: str) -> dict[str, Any]:
        done = confide(*args, "--home", str(self.world.home), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def set_choices(self, nhs_number: str, changes: dict[str, bool]) -> None:
        flags = [f"--{c.replace('_', '-')}" for c, on in changes.items() if on]
        for c, on in changes.items():
            if not on:
                flags += ["--clear", c]
        self._run("choices", "set", "--nhs-number", nhs_number, "--channel", "online", *flags)

    def gp_type1(self, nhs_number: str, extract_folder: Path | None) -> None:
        assert extract_folder is not None
        self.ingest(extract_folder)

    def ingest(self, folder: Path) -> None:
        self._run("hub", "ingest", str(folder))

    def query(self, project: str, sql: str) -> str:
        out = self._run(
            "query", "run", "--project", project, "--token", self.world.tokens["researcher"], sql
        )
        return str(out["id"])

    def reject(self, slug: str, reason: str) -> None:
        self._run(
            "access", "project", "reject", slug, "--reason", reason,
            "--token", self.world.tokens["approver"],
        )  # fmt: skip


class HttpEntry:
    name = "http"

    def __init__(self, world: World) -> None:
        self.world = world

    @contextmanager
    def _client(self) -> Iterator[Any]:
        from fastapi.testclient import TestClient

        from confide.web.cli import installation_app

        with self.world.parties() as parties:
            app = installation_app(parties, demo=True, gp_token=GP_TOKEN)  # codes in the outbox
            with TestClient(app, base_url="https://testserver") as http:
                yield http

    def _bearer(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.tokens[key]}"}

    def set_choices(self, nhs_number: str, changes: dict[str, bool]) -> None:
        person = next(p for p in self.world.people if p["nhs_number"] == nhs_number)
        outbox = self.world.home / "outbox"
        with self._client() as http:
            started = http.post(
                "/api/choices/identity/start",
                json={
                    "nhs_number": nhs_number,
                    "birth_date": str(person["birth_date"]),
                    "postcode": person["postcode"],
                },
            )
            assert started.status_code == 202, started.text
            newest = max(outbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
            code = json.loads(newest.read_text())["code"]
            session = http.post(
                "/api/choices/identity/verify",
                json={"challenge_id": started.json()["challenge_id"], "code": code},
            )
            assert session.status_code == 200, session.text
            token = session.json()["session_token"]
            changed = http.put(
                "/api/choices/me",
                json={"changes": changes},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert changed.status_code == 200, changed.text

    def gp_type1(self, nhs_number: str, extract_folder: Path | None) -> None:
        with self._client() as http:
            done = http.post(
                "/api/choices/gp/type1",
                json={"nhs_number": nhs_number, "dissent": True, "recorded_on": "2025-01-02"},
                headers={"Authorization": f"Bearer {GP_TOKEN}"},
            )
            assert done.status_code == 200, done.text

    def ingest(self, folder: Path) -> None:
        raise NotOffered("the HTTP API does not take submissions")

    def query(self, project: str, sql: str) -> str:
        with self._client() as http:
            done = http.post(
                "/api/tre/queries",
                json={"project": project, "sql": sql},
                headers=self._bearer("researcher"),
            )
            assert done.status_code == 200, done.text
            return str(done.json()["id"])

    def reject(self, slug: str, reason: str) -> None:
        with self._client() as http:
            done = http.post(
                f"/api/access/projects/{slug}/reject",
                json={"reason": reason},
                headers=self._bearer("approver"),
            )
            assert done.status_code == 200, done.text


class WebEntry:
    """The patient's pages in a real browser (Debian's Chromium, driven by Playwright)."""

    name = "web"
    CHROMIUM = Path("/usr/bin/chromium")

    def __init__(self, world: World) -> None:
        self.world = world

    def set_choices(self, nhs_number: str, changes: dict[str, bool]) -> None:
        from loopback import free_port
        from playwright.sync_api import sync_playwright
        from web_world import served

        from confide.web.cli import installation_app
        from confide.web.wording import CHOICES

        assert self.CHROMIUM.exists(), "Chromium is missing: run scripts/ensure-browser"
        person = next(p for p in self.world.people if p["nhs_number"] == nhs_number)
        born = date.fromisoformat(str(person["birth_date"]))
        labels = {w.choice.value: w.label for w in CHOICES}
        outbox = self.world.home / "outbox"
        with (
            self.world.parties() as parties,
            served(installation_app(parties, demo=True), free_port()) as url,
            sync_playwright() as pw,
        ):
            browser = pw.chromium.launch(executable_path=str(self.CHROMIUM), args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(url + "/")
                page.get_by_role("button", name="Start now").click()
                page.get_by_label("NHS number").fill(nhs_number)
                page.get_by_label("Day").fill(str(born.day))
                page.get_by_label("Month").fill(str(born.month))
                page.get_by_label("Year").fill(str(born.year))
                page.get_by_label("Postcode").fill(person["postcode"])
                page.get_by_role("button", name="Continue").click()
                newest = max(outbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
                page.get_by_label("Code").fill(json.loads(newest.read_text())["code"])
                page.get_by_role("button", name="Continue").click()
                page.get_by_role("button", name="Change your choices").click()
                for choice, on in changes.items():
                    page.get_by_label(labels[choice]).set_checked(on)
                page.get_by_role("button", name="Save my choices").click()
                assert page.get_by_role("heading", name="Choices saved").is_visible()
            finally:
                browser.close()

    def gp_type1(self, nhs_number: str, extract_folder: Path | None) -> None:
        raise NotOffered("a type 1 code reaches Confide from the GP, not from a web page")

    def ingest(self, folder: Path) -> None:
        raise NotOffered("no web page takes submissions")

    def query(self, project: str, sql: str) -> str:
        raise NotOffered("queries on the web are the staff console's (tests/browser)")

    def reject(self, slug: str, reason: str) -> None:
        raise NotOffered("decisions on the web are the staff console's (tests/browser)")


ENTRIES = {"python": PythonEntry, "cli": CliEntry, "http": HttpEntry, "web": WebEntry}


@pytest.fixture(params=sorted(ENTRIES))
def entry(request, world) -> Entry:
    return ENTRIES[request.param](world)


# -- what the checks read ---------------------------------------------------------------------
def hub_pseudonym(world: World, nhs_number: str) -> str:
    with world.parties() as parties:
        found = parties.pseudonymiser.pseudonyms_for([nhs_number])[0]
    assert found is not None
    return found


def included(world: World, query_id: str, pseudonym: str) -> bool:
    """Whether the person counted in the query's output (its members file, keyed)."""
    with world.parties() as parties:
        release_id = parties.tre_store.query(query_id).release_id
        folders = (parties.tre_store.releases, parties.tre_store.pending)
    folder = next(f for f in folders if (f / f"{release_id}.contributors").exists())
    data = (folder / f"{release_id}.contributors").read_bytes()
    salt = (folder / f"{release_id}.salt").read_text().strip()
    mark = hashlib.sha256(f"{salt}:{pseudonym}".encode()).digest()
    return any(data[i : i + 32] == mark for i in range(0, len(data), 32))


def query_through(entry: Entry, world: World, project: str, sql: str) -> str:
    """A query through the entry point, or the Python API where the entry offers none."""
    try:
        return entry.query(project, sql)
    except NotOffered:
        return PythonEntry(world).query(project, sql)


def kinds(world: World) -> list[str]:
    with world.parties() as parties:
        return ledger_kinds(parties.ledger)


# -- the promises -------------------------------------------------------------------------------
@pytest.mark.parametrize("choice", ["no_research", "share_nothing"])
def test_each_choice_applies_to_the_next_query(world, entry, choice) -> None:
    number = world.person(3)["nhs_number"]
    pseudonym = hub_pseudonym(world, number)
    assert included(world, query_through(entry, world, "demo-research", BY_SEX), pseudonym)
    entry.set_choices(number, {choice: True})
    assert not included(world, query_through(entry, world, "demo-research", BY_SEX), pseudonym)


def test_share_nothing_erases_from_the_hub_and_the_ledger_shows_it(world, entry) -> None:
    number = world.person(4)["nhs_number"]
    pseudonym = hub_pseudonym(world, number)
    assert pseudonym in pseudonyms_in_hub(world.home / "hub")
    before = kinds(world).count("erasure")
    entry.set_choices(number, {"share_nothing": True})
    assert pseudonym not in pseudonyms_in_hub(world.home / "hub")
    assert kinds(world).count("erasure") == before + 1
    assert world.pending() == 0  # nothing is left waiting


def test_a_type1_objection_at_the_gp_reaches_the_registry_and_removes_hospital_rows(
    world, entry
) -> None:
    number = world.person(5)["nhs_number"]
    pseudonym = hub_pseudonym(world, number)

    def trust_rows() -> int:
        with world.parties() as parties:
            store = parties.records_to_read()
            assert store is not None
            con = store.connect()
            query = "SELECT count(*) FROM events WHERE pseudonym = ? AND source = ?"
            return int(con.execute(query, [pseudonym, TRUST]).fetchone()[0])

    assert trust_rows() > 0  # the trust sent their records
    # The GP's next export carries the dissent code (the HTTP API: the GP system's own call).
    extract = small_extract(source=GP, patients=PATIENTS, seed=SEED, dissent=(5,))
    with world.parties() as parties:
        folder = write_extract(parties, extract)
    try:
        entry.gp_type1(number, folder)
    except NotOffered as why:
        pytest.skip(str(why))
    with world.parties() as parties:
        assert parties.choices.current(number).share_nothing
        assert parties.pseudonymiser.shares_nothing([number]) == [True]
    assert trust_rows() == 0
    assert pseudonym not in pseudonyms_in_hub(world.home / "hub")
    assert "erasure" in kinds(world)


def test_every_upload_choice_decision_and_query_is_in_the_ledger(world, entry) -> None:
    before = kinds(world)
    done: dict[str, int] = {}

    def offered(kind: str, step: Any) -> None:
        try:
            step()
            done[kind] = 1
        except NotOffered:
            done[kind] = 0

    offered("choice_changed", lambda: entry.set_choices(world.person(6)["nhs_number"],
                                                        {"no_commercial": True}))  # fmt: skip
    offered("refusal", lambda: entry.reject(world.draft, "More data than the question needs."))
    offered("query_run", lambda: entry.query("demo-research", BY_SEX))

    def upload() -> None:
        with world.parties() as parties:
            folder = write_extract(parties, small_extract(source="B86002", patients=10, seed=3))
        entry.ingest(folder)

    offered("submission_ingested", upload)
    after = kinds(world)
    added = after[len(before) :]
    assert after[: len(before)] == before
    assert done["choice_changed"] == 1  # every entry point takes a choice
    for kind, times in done.items():
        assert added.count(kind) == times, kind


def test_the_suite_runs_on_every_entry_point() -> None:
    assert set(ENTRIES) == {"python", "cli", "http", "web"}
    assert all(hasattr(cls, name) for cls in ENTRIES.values() for name in Entry.__dict__
               if not name.startswith("_") and callable(getattr(Entry, name)))  # fmt: skip
