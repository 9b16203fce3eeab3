"""The query service end to end on a real store: authorise, check, views, run, check the
output, store, record in the ledger, and the usage-report files."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from tre_world import BY_SEX, DIABETES, TreWorld, build, hold

from confide.access.errors import Forbidden
from confide.common.errors import InvalidInput, NotFound
from confide.tre import service as service_module
from confide.tre import views as views_module
from confide.tre.views import project_pseudonym


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-service"))
    yield made
    made.close()


def _ledger_tail(tre: TreWorld, n: int) -> list:
    size = tre.ledger.head().size
    return tre.ledger.decoded(max(0, size - n), size)


def test_a_released_query_is_stored_and_recorded(tre: TreWorld) -> None:
    outcome = tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)
    assert outcome.status == "released" and outcome.reason is None
    assert {r["sex"] for r in outcome.result["rows"]} == {"female", "male"}
    true = {"female": 0, "male": 0}
    for number in tre.numbers:  # the world's own counts, beside the released ones
        true[tre.sex_of(number)] += 1
    for row in outcome.result["rows"]:  # perturbed by at most 3 (acro: not rounded)
        assert abs(row["n"] - true[row["sex"]]) <= 3
    stored = tre.store.query(outcome.id)
    assert stored.sql_text == BY_SEX
    assert stored.sql_digest == hashlib.sha256(BY_SEX.encode()).hexdigest()
    kinds = [e.kind for e in _ledger_tail(tre, 3)]
    assert kinds == ["query_run", "output_checked", "release"]
    release = _ledger_tail(tre, 1)[0].body
    assert release["release_id"] == outcome.release_id
    assert release["organisation"] == "demo-university"
    assert release["data_form"] == "aggregate" and release["datasets"] == ["patients"]
    assert release["opt_outs_applied"] is True and release["patients"] == 120
    run = _ledger_tail(tre, 3)[0].body
    assert run["sql"] == BY_SEX and run["mode"] == "sdc"  # public, beside its digest
    assert hashlib.sha256(run["sql"].encode()).hexdigest() == run["query_digest"]


def test_query_text_that_looks_like_an_identifier_is_kept_out_of_the_log(tre: TreWorld) -> None:
    sql = BY_SEX.replace("GROUP BY", "WHERE p.sex <> 'LS2 7UE' GROUP BY")
    outcome = tre.service.run(tre.principal("researcher"), "demo-research", sql)
    # The filter removes nobody: the same cells as BY_SEX, picked another way (held).
    assert outcome.status == "held_for_review"
    run = next(e for e in _ledger_tail(tre, 3) if e.kind == "query_run").body
    assert run["query_id"] == outcome.id and "sql" not in run
    assert run["query_digest"] == hashlib.sha256(sql.encode()).hexdigest()
    assert tre.store.query(outcome.id).sql_text == sql  # kept by the TRE


def test_release_files_follow_the_usage_report_contract(tre: TreWorld) -> None:
    registry, pseudonymiser = tre.registry, tre.world.pseudonymiser
    target = tre.numbers[3]
    registry.set(target, {"no_research": True}, "online")
    born = (
        "SELECT CASE WHEN p.birth_year < 1970 THEN 'before 1970' ELSE '1970 on' END AS born, "
        "count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY 1"
    )  # a table whose cells differ from every earlier release's by many people
    try:
        outcome = tre.service.run(tre.principal("researcher"), "demo-research", born)
        assert outcome.status == "released", outcome.reason
    finally:
        registry.set(target, {"no_research": False}, "online")
    release_id = outcome.release_id
    contributors = (tre.store.releases / f"{release_id}.contributors").read_bytes()
    excluded = (tre.store.releases / f"{release_id}.excluded").read_bytes()
    hubs = pseudonymiser.pseudonyms_for(tre.numbers)

    salt = (tre.store.releases / f"{release_id}.salt").read_text().strip()
    assert len(salt) == 32 and salt != release_id  # random per cohort

    def commit(p: str) -> bytes:
        return hashlib.sha256(f"{salt}:{p}".encode()).digest()

    expected = sorted(commit(p) for n, p in zip(tre.numbers, hubs, strict=True) if n != target)
    assert contributors == b"".join(expected)
    assert excluded == commit(hubs[3])


def test_refusals_say_why_and_are_recorded(tre: TreWorld) -> None:
    outcome = tre.service.run(
        tre.principal("researcher"), "demo-research", "SELECT * FROM read_csv('/etc/passwd')"
    )
    assert outcome.status == "refused" and "file access" in outcome.reason
    assert outcome.result is None
    entry = _ledger_tail(tre, 1)[0]
    assert entry.kind == "refusal" and entry.body["ref"] == outcome.id
    row_level = tre.service.run(
        tre.principal("researcher"), "demo-research", "SELECT patient_id FROM patients"
    )
    assert row_level.status == "refused" and "only aggregates leave" in row_level.reason
    assert _ledger_tail(tre, 2)[0].kind == "query_run"  # recorded before it was refused


def test_held_outputs_show_no_result_to_the_researcher(tre: TreWorld) -> None:
    researcher = tre.principal("researcher")
    outcome = hold(tre.service, tre.registry, researcher, "demo-research", tre.numbers[5])
    assert outcome.status == "held_for_review" and outcome.result is None
    assert "differ" in outcome.reason and "by 1 person" in outcome.reason
    assert tre.service.show(researcher, outcome.id).result is None
    assert tre.store.query(outcome.id).result["rows"]  # kept for the checkers


def test_unapproved_columns_and_tables_are_refused(tre: TreWorld) -> None:
    planner = tre.principal("commercial")
    outcome = tre.service.run(
        planner,
        "demo-commercial",
        "SELECT area, count(DISTINCT patient_id) AS n FROM patients GROUP BY area",
    )
    assert outcome.status == "refused" and "area" in outcome.reason
    outcome = tre.service.run(
        planner, "demo-commercial", "SELECT count(DISTINCT patient_id) AS n FROM deaths"
    )
    assert outcome.status == "refused" and "deaths" in outcome.reason


def test_other_organisations_and_roles_cannot_query(tre: TreWorld) -> None:
    with pytest.raises(NotFound):
        tre.service.run(tre.principal("planner"), "demo-research", BY_SEX)
    with pytest.raises(Forbidden):
        tre.service.run(tre.principal("output_checker_1"), "demo-research", BY_SEX)
    mine = tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)
    with pytest.raises(NotFound):
        tre.service.show(tre.principal("planner"), mine.id)
    with pytest.raises(NotFound):
        tre.service.budget(tre.principal("planner"), "demo-research")
    with pytest.raises(TypeError):  # no option chooses the protection: it is the project's
        tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX, mode="exact")
    with pytest.raises(InvalidInput):
        tre.service.run(tre.principal("researcher"), "demo-research", "  ")


def test_suspended_and_expired_projects_are_refused(tmp_path: Path) -> None:
    tre = build(tmp_path, practices=1, patients=20)
    try:
        admin = tre.principal("administrator")
        tre.access.suspend(admin, "demo-planning", "Demo: paused for audit.")
        outcome = tre.service.run(
            tre.principal("planner"), "demo-planning", BY_SEX.replace("p.sex", "p.area")
        )
        assert outcome.status == "refused" and "suspended" in outcome.reason
        assert _ledger_tail(tre, 1)[0].kind == "refusal"
        later = tre.access.clock() + timedelta(days=400)
        tre.access.clock = lambda: later
        expired = tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)
        assert expired.status == "refused" and "expired" in expired.reason
    finally:
        tre.close()


def test_project_pseudonyms_differ_between_projects(tre: TreWorld) -> None:
    """The same person has unrelated patient_ids in two projects (keys differ)."""
    hub = tre.world.pseudonymiser.pseudonyms_for(tre.numbers[:1])[0]
    research = tre.access.project(tre.principal("researcher"), "demo-research").id
    planning = tre.access.project(tre.principal("planner"), "demo-planning").id
    a = project_pseudonym(tre.store.project_key(research), hub)
    b = project_pseudonym(tre.store.project_key(planning), hub)
    assert a != b and len(a) == 32


def test_every_query_runs_on_a_connection_built_by_build_views(
    tre: TreWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: set[int] = set()
    ran: list[int] = []
    real_build, real_run = views_module.build_views, service_module.run_aggregation

    def spy_build(con, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.add(id(con))
        return real_build(con, *args, **kwargs)

    def spy_run(con, plan, limits, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(id(con))
        return real_run(con, plan, limits, **kwargs)

    monkeypatch.setattr(views_module, "build_views", spy_build)
    monkeypatch.setattr(service_module, "run_aggregation", spy_run)
    for who, project, sql, epsilon in (
        ("researcher", "demo-research", BY_SEX, None),
        ("planner", "demo-planning", BY_SEX.replace("p.sex", "p.area"), None),
        ("commercial", "demo-commercial", BY_SEX, 0.1),
        (
            "researcher",
            "demo-research",
            f"SELECT count(DISTINCT e.patient_id) AS n FROM events e WHERE e.code = '{DIABETES}'",
            None,
        ),
    ):
        outcome = tre.service.run(tre.principal(who), project, sql, epsilon=epsilon)
        assert outcome.status in ("released", "held_for_review"), outcome.reason
    assert len(ran) == 4 and set(ran) <= built


def test_the_protection_is_the_projects_not_the_researchers(tre: TreWorld) -> None:
    """An SDC project has no budget to spend; a DP project answers only with noise, and
    once its budget is spent nothing else answers."""
    researcher = tre.principal("researcher")
    refused = tre.service.run(researcher, "demo-research", BY_SEX, epsilon=1.0)
    assert refused.status == "refused" and "no privacy budget" in refused.reason
    commercial = tre.principal("commercial")
    left = tre.service.budget(commercial, "demo-commercial")["epsilon_left"]
    noisy = tre.service.run(commercial, "demo-commercial", BY_SEX, epsilon=0.5)
    assert noisy.status == "released" and noisy.mode == "dp"
    assert noisy.result["intervals"] and noisy.budget_left == pytest.approx(left - 0.5)
    spent = tre.service.run(commercial, "demo-commercial", BY_SEX, epsilon=left - 0.5)
    assert spent.status == "released" and spent.budget_left == pytest.approx(0.0)
    for epsilon in (0.1, None):
        after = tre.service.run(commercial, "demo-commercial", BY_SEX, epsilon=epsilon)
        assert after.status == "refused" and "budget is exhausted" in after.reason
        assert after.result is None


def test_a_query_left_running_by_a_crash_becomes_a_recorded_refusal(tre: TreWorld) -> None:
    """A process killed mid-query leaves its record 'running'; the next service to start
    refuses it, with its ledger entry, so every query that ran ends in the log."""
    from dataclasses import replace

    from confide.common.clock import utcnow
    from confide.tre.service import QueryService

    outcome = tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)
    stuck = replace(
        tre.store.query(outcome.id),
        id="f" * 32,
        status="running",
        created_at=utcnow() - timedelta(hours=1),
    )
    tre.store.save_query(stuck)
    QueryService(tre.access, tre.world.hub.records, tre.service.exclusions, tre.ledger, tre.store)
    assert tre.store.query(stuck.id).status == "refused"
    assert "interrupted" in tre.store.query(stuck.id).reason
    last = _ledger_tail(tre, 1)[0]
    assert last.kind == "refusal" and last.body["ref"] == stuck.id


def test_too_many_queries_at_once_wait_for_each_other(tre: TreWorld) -> None:
    """Running queries are counted in the store (shared by every process of the TRE): past the
    project's cap a new one is refused, recorded, and nothing of it runs."""
    from dataclasses import replace

    from confide.common.clock import utcnow

    done = tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)
    template = tre.store.query(done.id)
    fakes = [
        replace(template, id=f"{i:032x}", status="running", created_at=utcnow())
        for i in range(1, 1 + tre.service.limits.running_per_project)
    ]
    for fake in fakes:
        tre.store.save_query(fake)
    try:
        waiting = tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)
        assert waiting.status == "refused" and "queries running" in waiting.reason
        assert _ledger_tail(tre, 2)[0].kind == "query_run"  # recorded all the same
    finally:
        for fake in fakes:
            tre.store.update_query(replace(fake, status="refused", reason="test"))
    assert (
        tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX).status == "released"
    )


def test_a_failure_inside_the_tre_is_one_generic_refusal_with_the_detail_kept(
    tre: TreWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether an engine fails can depend on the data, so its message never reaches the
    researcher: one generic reason, the detail kept for operators, and no release file."""

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("Conversion Error: could not convert 'LS2 7UE' to INT32")

    monkeypatch.setattr(service_module, "run_aggregation", broken)
    before = set(tre.store.releases.iterdir())
    outcome = tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)
    assert outcome.status == "refused" and outcome.reason == service_module.GENERIC_FAILURE
    assert "LS2" not in outcome.reason
    stored = tre.store.query(outcome.id)
    assert stored.detail and "Conversion Error" in stored.detail  # for operators
    run, refusal = _ledger_tail(tre, 2)
    assert run.kind == "query_run" and refusal.kind == "refusal"
    assert "LS2" not in str(refusal.body)
    assert set(tre.store.releases.iterdir()) == before


def _second_project(tre: TreWorld, slug: str) -> None:
    """Another approved research project of the researcher's organisation (acro rules)."""
    from confide.access.model import ProjectApplication
    from confide.access.seed import PEOPLE, PROTECTIONS, WINDOW_START

    researcher = tre.principal("researcher")
    today = tre.access.clock().date()
    tre.access.apply(
        researcher,
        ProjectApplication(
            slug=slug,
            title="A second study of the same organisation",
            purpose="research",
            legal_basis="public_task",
            datasets={"patients": ["birth_year", "sex", "area"]},
            window_start=WINDOW_START,
            window_end=today,
            expires_on=today + timedelta(days=30),
            summary="Counts of people by sex, asked again from another project.",
        ),
    )
    tre.access.submit(researcher, slug)
    org, _, email, _ = PEOPLE["approver"]
    approver = tre.access.principal_for(org, email)
    tre.access.approve(approver, slug, "approved", PROTECTIONS["demo-research"])


def test_a_second_project_of_the_organisation_cannot_difference_the_first(tre: TreWorld) -> None:
    """demo-research releases counts by sex; after one person leaves research, a second project
    of the same organisation asks the same table: its cells differ from the first release by
    that one person, so it is held, not released."""
    _second_project(tre, "second-study")
    researcher = tre.principal("researcher")
    first = tre.service.run(researcher, "demo-research", BY_SEX)
    assert first.status == "released"
    tre.registry.set(tre.numbers[5], {"no_research": True}, "online")
    second = tre.service.run(researcher, "second-study", BY_SEX)
    assert second.status == "held_for_review", second.reason
    assert second.result is None


@pytest.mark.parametrize(
    "definition",
    [{"population": "SELECT patient_id FROM patients", "x": 10**40}, {"\ud800": 1}],
    ids=["number out of range", "lone surrogate"],
)
def test_a_definition_that_cannot_be_read_is_a_clear_error(tre: TreWorld, definition) -> None:
    """Found by fuzzing the API: such a definition was a server error, not a refusal."""
    with pytest.raises(InvalidInput, match="cannot be read"):
        tre.service.run(tre.principal("researcher"), "demo-research", definition)
