"""Project views on the real hub store: choices, approval and per-project pseudonyms.

The property test draws random choice histories and random projects over a random population
that went through the real pipeline (practice agent → pseudonymiser → hub), and checks that the
views show exactly the people the policy includes — no excluded person ever, every included
person always — under the project's own pseudonyms.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tre_world import TreWorld, build

from confide.access.model import LegalBasis, ProjectGrant, Purpose, RecipientKind
from confide.choices.model import Choice, Choices
from confide.choices.policy import decide
from confide.tre.exclusions import OUTPUT_FORMS, RegistryExclusions
from confide.tre.views import build_views, project_pseudonym

PURPOSES = ["research", "planning", "commissioning", "public_health"]
RECIPIENTS = [r.value for r in RecipientKind]
BASES = [b.value for b in LegalBasis]
CHOICES = [c.value for c in Choice]


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-views"), practices=2, patients=30, seed=11)
    yield made
    made.close()


def _grant(purpose: str, recipient: str, basis: str, **overrides: object) -> ProjectGrant:
    fields: dict = {
        "project_id": uuid.uuid4().hex,
        "slug": "prop-test",
        "organisation": "org",
        "purpose": Purpose(purpose),
        "recipient_kind": RecipientKind(recipient),
        "legal_basis": LegalBasis(basis),
        "tables": {"patients": ("sex", "birth_year"), "events": ("code", "date")},
        "window_start": date(2000, 1, 1),
        "window_end": date(2030, 1, 1),
        "expires_on": date(2030, 1, 1),
    }
    fields.update(overrides)
    return ProjectGrant(**fields)


def _seen(tre: TreWorld, grant: ProjectGrant, preset: str, mode: str, key: bytes):  # type: ignore[no-untyped-def]
    exclusions = RegistryExclusions(tre.registry, tre.world.pseudonymiser, preset)
    excluded = exclusions.excluded(grant, OUTPUT_FORMS[mode])
    con = duckdb.connect()
    try:
        build_views(
            con, tre.world.hub.records, grant, excluded.pseudonyms, key, cohorts=tre.store.cohorts
        )
        people = {r[0] for r in con.execute("SELECT patient_id FROM patients").fetchall()}
        events = {r[0] for r in con.execute("SELECT patient_id FROM events").fetchall()}
    finally:
        con.close()
    return people, events


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(
        st.tuples(st.integers(0, 59), st.sampled_from(CHOICES), st.booleans()), max_size=12
    ),
    purpose=st.sampled_from(PURPOSES),
    recipient=st.sampled_from(RECIPIENTS),
    basis=st.sampled_from(BASES),
    preset=st.sampled_from(["strict", "ndoo_2018"]),
    mode=st.sampled_from(["rounding", "dp"]),
)
def test_views_show_exactly_the_people_the_policy_includes(
    tre: TreWorld,
    history: list[tuple[int, str, bool]],
    purpose: str,
    recipient: str,
    basis: str,
    preset: str,
    mode: str,
) -> None:
    current: dict[int, dict[str, bool]] = {}
    try:
        for person, choice, value in history:
            tre.registry.set(tre.numbers[person], {choice: value}, "online")
            current.setdefault(person, {})[choice] = value
        grant = _grant(purpose, recipient, basis)
        key = uuid.uuid4().bytes + uuid.uuid4().bytes
        people, events = _seen(tre, grant, preset, mode, key)
        hubs = tre.world.pseudonymiser.pseudonyms_for(tre.numbers)
        form = OUTPUT_FORMS[mode]
        expected = set()
        for i, hub in enumerate(hubs):
            choices = Choices(**current.get(i, {}))
            if decide(choices, purpose, recipient, basis, form, preset).include:
                expected.add(project_pseudonym(key, hub))
            else:
                assert project_pseudonym(key, hub) not in people | events
        assert people == expected
        assert events <= expected and events  # everyone has an event in the window
    finally:
        for person in current:
            tre.registry.set(tre.numbers[person], dict.fromkeys(CHOICES, False), "online")


def test_views_hold_only_approved_columns_and_dates(tre: TreWorld, tmp_path: Path) -> None:
    grant = _grant(
        "research",
        "academic",
        "public_task",
        tables={"events": ("code", "date"), "registrations": ("practice",)},
        window_start=date(2016, 1, 1),
        window_end=date(2018, 12, 31),
    )
    con = duckdb.connect()
    views = build_views(
        con, tre.world.hub.records, grant, pa.array([], pa.string()), b"k" * 32, cohorts=tmp_path
    )
    assert views.allowed == {
        "events": {"patient_id", "code", "date"},
        "registrations": {"patient_id", "practice"},
    }
    columns = [r[0] for r in con.execute("DESCRIBE events").fetchall()]
    assert columns == ["patient_id", "code", "date"]
    low, high = con.execute("SELECT min(date), max(date) FROM events").fetchone()
    assert low >= date(2016, 1, 1) and high <= date(2018, 12, 31)
    raw = con.execute(
        "SELECT count(*) FROM __raw_events WHERE date BETWEEN DATE '2016-01-01' AND "
        "DATE '2018-12-31'"
    ).fetchone()[0]
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == raw
    with pytest.raises(duckdb.Error):
        con.execute("SELECT count(*) FROM patients")  # not approved: no view at all


def test_the_duckdb_hmac_matches_the_reference(tre: TreWorld, tmp_path: Path) -> None:
    key = hashlib.sha256(b"a key longer than a block" * 5).digest() * 3  # 96 bytes: hashed first
    grant = _grant("planning", "nhs", "public_task")
    con = duckdb.connect()
    build_views(con, tre.world.hub.records, grant, pa.array([], pa.string()), key, cohorts=tmp_path)
    pairs = con.execute("SELECT pseudonym, patient_id FROM __people").fetchall()
    assert len(pairs) == 60
    assert all(project_pseudonym(key, hub) == pid for hub, pid in pairs)


def test_a_choice_applies_to_every_query_that_starts_after_it_is_recorded(
    tmp_path: Path,
) -> None:
    tre = build(tmp_path, practices=1, patients=30, seed=3)
    tre.service.limits = replace(tre.service.limits, running_per_project=4, running_overall=4)
    target = tre.numbers[5]
    hub = tre.world.pseudonymiser.pseudonyms_for([target])[0]
    researcher = tre.principal("researcher")
    sql = "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.sex"
    runs: list[tuple[float, float, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    set_done: list[float] = []
    set_started: list[float] = []
    failures: list[str] = []

    def querying() -> None:
        while not stop.is_set():
            start = time.monotonic()
            outcome = tre.service.run(researcher, "demo-research", sql)
            # After the change the table differs from earlier ones by one person: held.
            if outcome.status not in ("released", "held_for_review"):
                failures.append(str(outcome.reason))
                return
            release_id = tre.store.query(outcome.id).release_id
            with lock:
                runs.append((start, time.monotonic(), release_id))

    def count(predicate) -> int:  # type: ignore[no-untyped-def]
        with lock:
            return sum(1 for run in runs if predicate(run))

    def choosing() -> None:
        deadline = time.monotonic() + 120
        while count(lambda run: True) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        set_started.append(time.monotonic())
        tre.registry.set(target, {"no_research": True}, "online")
        set_done.append(time.monotonic())
        while count(lambda run: run[0] > set_done[0]) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()

    try:
        threads = [threading.Thread(target=querying) for _ in range(3)]
        threads.append(threading.Thread(target=choosing))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
        assert not failures, failures
        done = set_done[0]

        def included(release_id: str) -> bool:
            folder = tre.store.releases
            if not (folder / f"{release_id}.contributors").exists():
                folder = tre.store.pending  # held for the checkers: its files wait there
            data = (folder / f"{release_id}.contributors").read_bytes()
            salt = (folder / f"{release_id}.salt").read_text().strip()
            mark = hashlib.sha256(f"{salt}:{hub}".encode()).digest()
            return any(data[i : i + 32] == mark for i in range(0, len(data), 32))

        after = [r for r in runs if r[0] > done]
        # Queries that finished before the change began must include the person; queries
        # that started after it returned must not. (Overlapping ones may go either way.)
        before = [r for r in runs if r[1] < set_started[0]]
        assert after and before
        assert not any(included(r[2]) for r in after)
        assert all(included(r[2]) for r in before)
    finally:
        tre.close()
