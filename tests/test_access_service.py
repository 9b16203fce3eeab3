"""The access service on both operational stores: roles, tenants, the approval workflow,
expiry and suspension, credentials and the audit trail."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from confide.access import Access, ProjectApplication, ProjectStatus, Purpose, RecipientKind
from confide.access import store as tables
from confide.access.errors import PROJECT_NOT_FOUND, Conflict, Forbidden, Unauthenticated
from confide.access.model import LegalBasis, Principal
from confide.access.service import ProjectNotActive
from confide.common.errors import InvalidInput, NotFound
from confide.common.home import Home

START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)

# key → (organisation, roles); every person's name and email are made from the key.
PEOPLE: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "approver": (("dac", ("approver",)),),
    "approver2": (("dac", ("approver",)),),
    "admin": (("dac", ("administrator",)),),
    "checker": (("dac", ("output_checker",)),),
    "dac_applicant": (("dac", ("applicant",)),),
    "alice": (("uni", ("applicant",)),),
    "alice2": (("uni", ("applicant",)),),
    "uni_checker": (("uni", ("output_checker",)),),
    "bob": (("icb", ("applicant",)),),
    "carol": (("pharma", ("applicant",)),),
    # one person in two organisations: applicant at uni, approver at the approving body
    "dual": (("uni", ("applicant",)), ("dac", ("approver",))),
    # an approver who also works at uni (but did not apply)
    "dual2": (("uni", ("output_checker",)), ("dac", ("approver",))),
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class World:
    access: Access
    clock: Clock
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def who(self, key: str, org: str | None = None) -> Principal:
        org = org or PEOPLE[key][0][0]
        return self.access.principal_for(org, email_of(key))

    @property
    def today(self) -> date:
        return self.clock.now.date()


def name_of(key: str) -> str:
    return f"Person {key.title()} Example"


def email_of(key: str) -> str:
    return f"{key}@people.example"


def build_world(home: Path, **options: Any) -> World:
    clock = Clock(START)
    access = Access.open(Home.at(home), clock=clock, **options)
    world = World(access, clock)
    access.listeners.append(lambda kind, body: world.events.append((kind, body)))
    access.create_organisation("Data Access Committee", "nhs", slug="dac", approving_body=True)
    access.create_organisation("University of Example", "academic", slug="uni")
    access.create_organisation("Example Integrated Care Board", "nhs", slug="icb")
    access.create_organisation("Example Pharma Ltd", "commercial", slug="pharma")
    for key, memberships in PEOPLE.items():
        for org, roles in memberships:
            access.add_person(org, name_of(key), email_of(key), roles)
    return world


def application(**overrides: Any) -> ProjectApplication:
    values: dict[str, Any] = {
        "title": "Asthma outcomes",
        "purpose": "research",
        "legal_basis": "public_task",
        "datasets": {"events": ["code", "date"], "patients": ["birth_year", "sex"]},
        "window_start": date(2015, 1, 1),
        "window_end": date(2024, 12, 31),
        "expires_on": START.date() + timedelta(days=180),
    }
    values.update(overrides)
    return ProjectApplication(**values)


def approved(world: World, slug: str, applicant: str = "alice", **overrides: Any) -> str:
    """A project applied for by ``applicant`` (default alice at uni), submitted and approved."""
    who = world.who(applicant)
    world.access.apply(who, application(slug=slug, **overrides))
    world.access.submit(who, slug)
    world.access.approve(world.who("approver"), slug, "Meets the criteria.")
    return slug


@pytest.fixture
def world(opstore: str, tmp_path: Path) -> World:
    w = build_world(tmp_path)
    yield w
    w.access.close()


@pytest.fixture
def sqlite_world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    """For checks that never reach the store's dialect (input validation): SQLite only."""
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
    w = build_world(tmp_path)
    yield w
    w.access.close()


# --- the workflow and its record ----------------------------------------------------------


def test_the_whole_lifecycle_is_recorded_in_the_audit_trail(world: World) -> None:
    a = world.access
    alice = world.who("alice")
    project = a.apply(alice, application(slug="asthma"))
    assert project.status is ProjectStatus.DRAFT
    assert project.organisation == "uni"
    assert project.recipient_kind is RecipientKind.ACADEMIC  # from the organisation
    assert a.submit(alice, "asthma").status is ProjectStatus.SUBMITTED
    decided = a.approve(world.who("approver"), "asthma", "Meets the criteria.")
    assert decided.status is ProjectStatus.APPROVED

    trail = a.audit_trail("asthma")
    assert [e["kind"] for e in trail] == [
        "project_applied",
        "project_submitted",
        "project_approved",
    ]
    approver_id = a.person(email_of("approver")).id
    assert trail[-1]["actor_id"] == approver_id
    assert trail[-1]["actor_role"] == "approver"
    assert trail[-1]["detail"]["reason"] == "Meets the criteria."
    (decision,) = a.decisions("asthma")
    assert decision["approver_id"] == approver_id
    assert decision["decision"] == "approve"
    # what the organisation sees: roles, not people
    history = a.history(alice, "asthma")
    assert [h["actor_role"] for h in history] == ["applicant", "applicant", "approver"]
    assert "actor_id" not in json.dumps(history)
    kinds = [k for k, _ in world.events if k.startswith("project_")]
    assert kinds == ["project_applied", "project_submitted", "project_approved"]


def test_listener_bodies_carry_no_personal_data(world: World) -> None:
    approved(world, "pro1")
    world.access.suspend(world.who("admin"), "pro1", "Audit pending.")
    world.access.reinstate(world.who("admin"), "pro1", "Audit passed.")
    world.access.apply(world.who("bob"), application(slug="pro2"))
    world.access.submit(world.who("bob"), "pro2")
    world.access.reject(world.who("approver"), "pro2", "Purpose unclear.")
    with pytest.raises(Forbidden):
        world.access.apply(world.who("carol"), application(purpose="insurance"))
    kinds = {k for k, _ in world.events}
    assert {
        "project_applied",
        "project_submitted",
        "project_approved",
        "project_suspended",
        "project_reinstated",
        "project_rejected",
        "project_refused",
        "organisation_registered",
        "roles_granted",
    } <= kinds
    text = json.dumps([b for _, b in world.events], default=str)
    for key in PEOPLE:
        assert name_of(key) not in text
        assert email_of(key) not in text
        assert world.access.person(email_of(key)).id not in text
    for kind, body in world.events:
        if kind.startswith("project_") and kind != "project_refused":
            assert body["project"] and body["organisation"] and body["actor_role"]


def test_nobody_decides_their_own_application(world: World) -> None:
    dual_at_uni = world.who("dual", "uni")
    world.access.apply(dual_at_uni, application(slug="own"))
    world.access.submit(dual_at_uni, "own")
    dual_at_dac = world.who("dual", "dac")
    for decide in (world.access.approve, world.access.reject):
        with pytest.raises(Forbidden, match="own application"):
            decide(dual_at_dac, "own", "Looks fine to me.")
    # nor may anyone else who works at the applying organisation
    with pytest.raises(Forbidden, match="member of the applying organisation"):
        world.access.approve(world.who("dual2", "dac"), "own", "Colleague says yes.")
    assert world.access.decisions("own") == []
    assert world.access.approve(world.who("approver"), "own", "Independent yes.").status is (
        ProjectStatus.APPROVED
    )


def test_an_approving_body_cannot_approve_its_own_projects(world: World) -> None:
    who = world.who("dac_applicant")
    world.access.apply(who, application(slug="dac-own", purpose="planning"))
    world.access.submit(who, "dac-own")
    with pytest.raises(Forbidden, match="member of the applying organisation"):
        world.access.approve(world.who("approver"), "dac-own", "Ours.")


@pytest.mark.parametrize("key", ["alice", "alice2", "checker", "admin", "bob"])
def test_only_approvers_of_an_approving_body_decide(world: World, key: str) -> None:
    world.access.apply(world.who("alice"), application(slug="needs-approver"))
    world.access.submit(world.who("alice"), "needs-approver")
    expected = NotFound if key == "bob" else Forbidden  # bob cannot even see it
    with pytest.raises(expected):
        world.access.approve(world.who(key), "needs-approver", "Yes.")
    assert world.access.project(world.who("alice"), "needs-approver").status is (
        ProjectStatus.SUBMITTED
    )


def test_approvers_and_administrators_only_in_approving_bodies(world: World) -> None:
    for role in ("approver", "administrator"):
        with pytest.raises(InvalidInput, match="approving body"):
            world.access.add_person("uni", "Someone", "someone@people.example", [role])


def test_decisions_need_a_submitted_application_and_a_reason(world: World) -> None:
    world.access.apply(world.who("alice"), application(slug="draft-only"))
    with pytest.raises(NotFound):  # drafts are private to their organisation
        world.access.approve(world.who("approver"), "draft-only", "Early.")
    world.access.submit(world.who("alice"), "draft-only")
    with pytest.raises(InvalidInput, match="reason"):
        world.access.approve(world.who("approver"), "draft-only", "   ")
    with pytest.raises(Conflict):
        world.access.submit(world.who("alice"), "draft-only")
    world.access.reject(world.who("approver"), "draft-only", "Not yet.")
    with pytest.raises(Conflict):
        world.access.approve(world.who("approver2"), "draft-only", "Overrule.")


def test_two_approvals_can_be_required(opstore: str, tmp_path: Path) -> None:
    world = build_world(tmp_path, approvals_required=2)
    a = world.access
    a.apply(world.who("alice"), application(slug="two-keys"))
    a.submit(world.who("alice"), "two-keys")
    assert a.approve(world.who("approver"), "two-keys", "One.").status is ProjectStatus.SUBMITTED
    with pytest.raises(Conflict, match="already"):
        a.approve(world.who("approver"), "two-keys", "One again.")
    assert a.approve(world.who("approver2"), "two-keys", "Two.").status is ProjectStatus.APPROVED
    kinds = [e["kind"] for e in a.audit_trail("two-keys")]
    assert kinds[-2:] == ["project_approval_recorded", "project_approved"]
    a.close()


# --- what may be applied for ---------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["insurance", "marketing"])
def test_insurance_and_marketing_are_refused_under_every_circumstance(
    world: World, purpose: str
) -> None:
    for applicant, basis in itertools.product(
        ["alice", "bob", "carol", "dac_applicant"], LegalBasis
    ):
        with pytest.raises(Forbidden, match="never supplies data") as info:
            world.access.apply(
                world.who(applicant), application(purpose=purpose, legal_basis=basis)
            )
        assert "No other purpose" in (info.value.hint or "")
        kind, body = world.events[-1]
        assert kind == "project_refused" and body["purpose"] == purpose
        assert world.access.projects(world.who(applicant)) == []


@pytest.mark.parametrize(
    ("applicant", "purpose", "basis", "match"),
    [
        ("carol", "planning", "legitimate_interests", "may not apply for planning"),
        ("alice", "commissioning", "public_task", "may not apply for commissioning"),
        ("bob", "research", "legitimate_interests", "does not fit"),
        ("carol", "research", "public_task", "public bodies"),
        ("bob", "planning", "consent", "specific research study"),
        ("carol", "research", "copi_reg3", "does not fit"),
    ],
)
def test_purpose_recipient_and_basis_must_fit(
    sqlite_world: World, applicant: str, purpose: str, basis: str, match: str
) -> None:
    with pytest.raises(Forbidden, match=match) as info:
        sqlite_world.access.apply(
            sqlite_world.who(applicant), application(purpose=purpose, legal_basis=basis)
        )
    assert info.value.hint


def test_the_recipient_kind_is_the_organisations(sqlite_world: World) -> None:
    with pytest.raises(InvalidInput, match="registered as commercial"):
        sqlite_world.access.apply(sqlite_world.who("carol"), application(recipient_kind="academic"))


@pytest.mark.parametrize(
    ("datasets", "match"),
    [
        ({}, "asks for no data"),
        ({"gp_free_text": ["text"]}, "no table"),
        ({"events": ["code", "nhs_number"]}, "no column 'nhs_number'"),
        ({"patients": ["pseudonym"]}, "cannot be requested"),
        ({"events": []}, "No columns"),
        ({"events": "code"}, "must be a list"),
    ],
)
def test_requested_data_is_checked_against_the_record_store(
    sqlite_world: World, datasets: dict, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        sqlite_world.access.apply(sqlite_world.who("alice"), application(datasets=datasets))


def test_star_means_every_column_except_the_patient_key(sqlite_world: World) -> None:
    p = sqlite_world.access.apply(
        sqlite_world.who("alice"), application(datasets={"deaths": ["*"]})
    )
    assert p.datasets == {"deaths": ("source", "date_of_death")}


@pytest.mark.parametrize(
    "dates",
    [
        {"window_start": date(2024, 1, 1), "window_end": date(2023, 1, 1)},
        {"window_start": date(1850, 1, 1)},
        {"expires_on": START.date()},
        {"expires_on": START.date() + timedelta(days=6 * 365)},
    ],
)
def test_dates_are_checked(sqlite_world: World, dates: dict) -> None:
    with pytest.raises(InvalidInput):
        sqlite_world.access.apply(sqlite_world.who("alice"), application(**dates))


def test_project_names_are_unique_and_say_nothing_about_their_owner(world: World) -> None:
    world.access.apply(world.who("bob"), application(slug="taken"))
    with pytest.raises(Conflict) as other_org:
        world.access.apply(world.who("alice"), application(slug="taken"))
    with pytest.raises(Conflict) as same_org:
        world.access.apply(world.who("bob"), application(slug="taken"))
    assert other_org.value.message == same_org.value.message
    assert "icb" not in other_org.value.message
    made = [world.access.apply(world.who("alice"), application()).slug for _ in range(2)]
    assert made == ["asthma-outcomes", "asthma-outcomes-2"]


# --- tenant separation and the TRE's question ----------------------------------------------


def test_other_organisations_cannot_tell_a_project_exists(world: World) -> None:
    approved(world, "secret-study")
    world.access.apply(world.who("alice"), application(slug="secret-draft"))
    for key in ("bob", "carol", "dac_applicant"):
        who = world.who(key)
        assert world.access.projects(who) == []
        for slug in ("secret-study", "secret-draft", "never-existed"):
            for call in (
                lambda s, w=who: world.access.project(w, s),
                lambda s, w=who: world.access.history(w, s),
                lambda s, w=who: world.access.authorise_query(w, s),
                lambda s, w=who: world.access.submit(w, s),
            ):
                with pytest.raises(NotFound) as info:
                    call(slug)
                assert info.value.message == PROJECT_NOT_FOUND


def test_reviewers_see_submitted_projects_but_not_drafts(world: World) -> None:
    approved(world, "visible")
    world.access.apply(world.who("alice"), application(slug="private-draft"))
    for key in ("approver", "checker", "admin"):
        slugs = {p.slug for p in world.access.projects(world.who(key))}
        assert slugs == {"visible"}
        with pytest.raises(NotFound):
            world.access.project(world.who(key), "private-draft")
    colleagues = {p.slug for p in world.access.projects(world.who("alice2"))}
    assert colleagues == {"visible", "private-draft"}


def test_an_approved_project_gets_a_grant_with_everything_the_views_need(world: World) -> None:
    approved(world, "granted")
    grant = world.access.authorise_query(world.who("alice2"), "granted")
    assert grant.slug == "granted"
    assert grant.organisation == "uni"
    assert grant.purpose is Purpose.RESEARCH
    assert grant.recipient_kind is RecipientKind.ACADEMIC
    assert grant.legal_basis is LegalBasis.PUBLIC_TASK
    assert dict(grant.tables) == {"events": ("code", "date"), "patients": ("birth_year", "sex")}
    assert (grant.window_start, grant.window_end) == (date(2015, 1, 1), date(2024, 12, 31))
    assert grant.allows("events", "code") and not grant.allows("events", "value")
    assert len(grant.project_id) == 32
    assert grant.as_dict()["tables"]["events"] == ["code", "date"]


@pytest.mark.parametrize("key", ["uni_checker", "approver", "admin", "checker"])
def test_only_applicants_of_the_projects_organisation_may_query(world: World, key: str) -> None:
    approved(world, "qqq")
    with pytest.raises(Forbidden):
        world.access.authorise_query(world.who(key), "qqq")


def test_projects_that_are_not_approved_can_do_nothing(world: World) -> None:
    alice = world.who("alice")
    world.access.apply(alice, application(slug="draft"))
    with pytest.raises(ProjectNotActive, match="not been submitted"):
        world.access.authorise_query(alice, "draft")
    world.access.submit(alice, "draft")
    with pytest.raises(ProjectNotActive, match="awaiting approval"):
        world.access.authorise_query(alice, "draft")
    world.access.reject(world.who("approver"), "draft", "No.")
    with pytest.raises(ProjectNotActive, match="was rejected"):
        world.access.authorise_query(alice, "draft")


def test_suspended_projects_can_do_nothing_until_reinstated(world: World) -> None:
    approved(world, "paused")
    alice, admin = world.who("alice"), world.who("admin")
    with pytest.raises(Forbidden, match="administrators"):
        world.access.suspend(alice, "paused", "Self-suspension.")
    with pytest.raises(Forbidden, match="administrators"):
        world.access.suspend(world.who("approver"), "paused", "Not my job.")
    assert world.access.suspend(admin, "paused", "Breach under review.").status is (
        ProjectStatus.SUSPENDED
    )
    with pytest.raises(ProjectNotActive, match="suspended") as info:
        world.access.authorise_query(alice, "paused")
    assert info.value.status is ProjectStatus.SUSPENDED
    with pytest.raises(Conflict):
        world.access.suspend(admin, "paused", "Again.")
    world.access.reinstate(admin, "paused", "Review closed.")
    assert world.access.authorise_query(alice, "paused").slug == "paused"


def test_expired_projects_can_do_nothing(world: World) -> None:
    approved(world, "short", expires_on=START.date() + timedelta(days=10))
    alice = world.who("alice")
    world.clock.advance(days=10)
    assert world.access.authorise_query(alice, "short").slug == "short"  # last day still valid
    world.clock.advance(days=1)
    project = world.access.project(alice, "short")
    assert project.status is ProjectStatus.EXPIRED
    assert project.stored_status is ProjectStatus.APPROVED
    with pytest.raises(ProjectNotActive, match="expired") as info:
        world.access.authorise_query(alice, "short")
    assert info.value.status is ProjectStatus.EXPIRED
    with pytest.raises(Conflict):
        world.access.suspend(world.who("admin"), "short", "Too late.")


def test_an_expired_application_cannot_be_submitted_or_approved(world: World) -> None:
    alice = world.who("alice")
    world.access.apply(alice, application(slug="late", expires_on=START.date() + timedelta(1)))
    world.access.apply(alice, application(slug="later", expires_on=START.date() + timedelta(1)))
    world.access.submit(alice, "later")
    world.clock.advance(days=2)
    with pytest.raises(Conflict, match="expired"):
        world.access.submit(alice, "late")
    with pytest.raises(Conflict, match="expired"):
        world.access.approve(world.who("approver"), "later", "Yes.")


# --- credentials ---------------------------------------------------------------------------


def test_tokens_authenticate_with_current_roles_and_expire(world: World) -> None:
    client_id, secret = world.access.create_client("uni", email_of("alice"))
    issued = world.access.issue_token(client_id, secret)
    assert issued.expires_in == 3600
    who = world.access.authenticate(issued.access_token)
    assert (who.organisation, who.client_id) == ("uni", client_id)
    assert who.roles == {"applicant"}
    world.access.revoke_role("uni", email_of("alice"), "applicant")
    assert world.access.authenticate(issued.access_token).roles == frozenset()
    world.clock.advance(seconds=3599)
    world.access.authenticate(issued.access_token)
    world.clock.advance(seconds=1)
    with pytest.raises(Unauthenticated):
        world.access.authenticate(issued.access_token)


def test_bad_credentials_give_no_hint_whether_the_client_exists(world: World) -> None:
    client_id, secret = world.access.create_client("uni", email_of("alice"))
    revoked_id, revoked_secret = world.access.create_client("uni", email_of("alice2"))
    world.access.revoke_client(revoked_id)
    answers = []
    for cid, sec in [
        (client_id, secret + "x"),
        (client_id, ""),
        ("cfd-00000000000000000000", secret),
        ("", ""),
        (revoked_id, revoked_secret),
    ]:
        with pytest.raises(Unauthenticated) as info:
            world.access.issue_token(cid, sec)
        answers.append((type(info.value), info.value.message, info.value.hint))
    assert len(set(answers)) == 1
    with pytest.raises(Unauthenticated):
        world.access.authenticate("not-a-token")


def test_revoking_a_client_ends_its_tokens(world: World) -> None:
    client_id, secret = world.access.create_client("icb", email_of("bob"))
    token = world.access.issue_token(client_id, secret).access_token
    world.access.revoke_client(client_id)
    with pytest.raises(Unauthenticated):
        world.access.authenticate(token)


def test_secrets_and_tokens_are_stored_only_as_hashes(world: World) -> None:
    client_id, secret = world.access.create_client("uni", email_of("alice"))
    token = world.access.issue_token(client_id, secret).access_token
    with world.access.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(select(tables.api_clients)).all()]
        stored += [tuple(r) for r in conn.execute(select(tables.tokens)).all()]
    text = repr(stored)
    assert secret not in text and token not in text
    assert "scrypt$" in text


def test_clients_act_only_for_members(world: World) -> None:
    with pytest.raises(InvalidInput, match="no role"):
        world.access.create_client("pharma", email_of("alice"))
