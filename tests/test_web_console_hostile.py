"""The staff consoles under attack: tenants kept apart, wrong roles refused with a clear 403,
and hostile input on every form (no CSRF token, oversized, wrong types, script injection)
answered with a clear message while nothing changes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_console_world import (
    COUNT_SQL,
    ConsoleWorld,
    build_console_world,
    email_of,
    sign_in,
)
from web_seed import csrf_of

from confide.access import store as access_tables
from confide.tre import store as tre_tables
from confide.web.forms import MAX_BODY

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> ConsoleWorld:
    made = build_console_world(tmp_path_factory.mktemp("console-hostile") / "home")
    yield made
    made.close()


@pytest.fixture(scope="module")
def app(world):
    return world.app()


@pytest.fixture(scope="module")
def fixtures(world):
    """A draft and a submitted application (university) and a held output (research)."""
    access, service = world.parties.access, world.parties.service
    from confide.access.model import ProjectApplication

    who = world.principal("researcher")
    today = access.clock().date()
    for slug in ("hostile-draft", "hostile-submitted"):
        access.apply(
            who,
            ProjectApplication(
                slug=slug,
                title=f"Test {slug}",
                purpose="research",
                legal_basis="public_task",
                datasets={"patients": ["sex"]},
                window_start=today.replace(year=today.year - 5),
                window_end=today,
                expires_on=today.replace(year=today.year + 1),
            ),
        )
    access.submit(who, "hostile-submitted")
    held = world.held(person=1)
    released = service.run(who, "demo-research", COUNT_SQL)
    assert held.status == "held_for_review" and released.status == "released"
    return {"held": held.id, "released": released.id}


def client(app) -> TestClient:
    return TestClient(app, base_url="https://testserver")


def snapshot(world: ConsoleWorld) -> tuple:
    """Everything a staff form could change."""
    counts = []
    with world.parties.access.engine.connect() as conn:
        for table in (access_tables.projects, access_tables.project_events,
                      access_tables.approvals):  # fmt: skip
            counts.append(conn.execute(select(func.count()).select_from(table)).scalar_one())
        statuses = tuple(conn.execute(select(access_tables.projects.c.status)).scalars())
    with world.parties.tre_store.engine.connect() as conn:
        for table in (tre_tables.queries, tre_tables.votes, tre_tables.spends):
            counts.append(conn.execute(select(func.count()).select_from(table)).scalar_one())
    return (*counts, statuses, world.parties.ledger.head().size)


# who signs in for each form, and a valid body (without the CSRF token)
def forms(ids: dict[str, str]) -> dict[str, tuple[str, dict]]:
    return {
        "/staff/organisation": ("researcher", {"organisation": "demo-university"}),
        "/staff/projects/new": (
            "researcher",
            {
                "title": "A hostile test",
                "purpose": "research",
                "recipient_kind": "academic",
                "legal_basis": "public_task",
                "columns": "patients.sex",
                "window_start[day]": "1",
                "window_start[month]": "1",
                "window_start[year]": "2015",
                "window_end[day]": "1",
                "window_end[month]": "1",
                "window_end[year]": "2020",
                "expires_on[day]": "1",
                "expires_on[month]": "1",
                "expires_on[year]": "2030",
                "summary": "",
            },
        ),
        "/staff/projects/hostile-draft/submit": ("researcher", {}),
        "/staff/projects/demo-research/console": (
            "researcher",
            {"sql": COUNT_SQL},
        ),
        "/staff/applications/hostile-submitted/decision": (
            "approver",
            {"decision": "approve", "reason": "Fine."},
        ),
        "/staff/applications/demo-planning/oversight": (
            "administrator",
            {"action": "suspend", "reason": "Audit."},
        ),
        f"/staff/reviews/{ids['held']}/vote": (
            "output_checker_1",
            {"vote": "approve", "reason": "Fine."},
        ),
        "/staff/sign-out": ("researcher", {}),
    }


FORM_PATHS = [
    "/staff/organisation",
    "/staff/projects/new",
    "/staff/projects/hostile-draft/submit",
    "/staff/projects/demo-research/console",
    "/staff/applications/hostile-submitted/decision",
    "/staff/applications/demo-planning/oversight",
    "/staff/reviews/{held}/vote",
    "/staff/sign-out",
]


@pytest.mark.parametrize("path", FORM_PATHS)
@pytest.mark.parametrize("token", ["", "forged-token-forged-token-forged-token-xx"])
def test_csrf_refused_on_every_form(app, world, fixtures, path, token):
    path = path.format(**fixtures)
    who, body = forms(fixtures)[path]
    with client(app) as http:
        sign_in(http, world, email_of(who))
        before = snapshot(world)
        refused = http.post(path, data={**body, "csrf_token": token})
        assert refused.status_code == 403 and "did not come from this website" in refused.text
        assert snapshot(world) == before
        assert http.get("/staff").status_code == 200  # still signed in


@pytest.mark.parametrize("path", ["/staff/sign-in", "/staff/code", *FORM_PATHS])
def test_oversized_and_unreadable_bodies(app, world, fixtures, path):
    path = path.format(**fixtures)
    who = forms(fixtures).get(path, ("researcher", {}))[0]
    with client(app) as http:
        token = sign_in(http, world, email_of(who))
        before = snapshot(world)
        big = http.post(path, data={"csrf_token": token, "x": "a" * (MAX_BODY + 1)})
        assert big.status_code == 413 and "too large" in big.text
        multipart = http.post(path, data={"csrf_token": token}, files={"f": ("a.txt", b"x")})
        assert multipart.status_code == 422 and "not sent the way" in multipart.text
        raw = http.post(
            path,
            content=b"csrf_token=" + token.encode() + b"&sql=%ff%fe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert raw.status_code == 422 and "could not be read" in raw.text
        assert snapshot(world) == before


def _hostile(http, path: str, token: str, body: dict, message: str) -> None:
    page = http.post(path, data={"csrf_token": token, **body})
    assert page.status_code == 422, (body, page.text[:600])
    assert message in page.text, (message, body)
    assert SCRIPT not in page.text


def test_sign_in_forms_hostile_values(app, world):
    with client(app) as http:
        token = csrf_of(http.get("/staff/sign-in").text)
        before = snapshot(world)
        for email in (SCRIPT, "", "x" * 300, "two@@"):
            _hostile(http, "/staff/sign-in", token, {"email": email}, "Enter an email address")
        http.post("/staff/sign-in", data={"csrf_token": token, "email": "nobody@x.example"})
        for code in (SCRIPT, "12", "1" * 999, "١٢٣٤٥٦"):
            _hostile(http, "/staff/code", token, {"code": code}, "6 numbers")
        assert snapshot(world) == before
        token = sign_in(http, world, email_of("researcher"))
        _hostile(http, "/staff/organisation", token, {"organisation": SCRIPT}, "Choose one of the")
        _hostile(
            http, "/staff/organisation", token, {"organisation": "demo-pharma"}, "Choose one of"
        )


def test_application_form_hostile_values(app, world, fixtures):
    path = "/staff/projects/new"
    valid = forms(fixtures)[path][1]
    cases = [
        ({"title": SCRIPT}, "must not contain HTML"),
        ({"title": "x" * 300}, "200 characters or fewer"),
        ({"title": ""}, "Enter a title"),
        ({"title": "Cohort of 943 476 5919"}, "seems to contain an NHS number"),
        ({"slug": "Bad Slug!"}, "short name must be"),
        ({"purpose": "insurance"}, "Choose one of the options shown"),
        ({"purpose": ["research", "planning"]}, "Choose one of the options shown"),
        ({"recipient_kind": SCRIPT}, "Choose one of the options shown"),
        ({"legal_basis": "because"}, "Choose one of the options shown"),
        ({"columns": "patients.pseudonym"}, "Choose columns from the lists shown"),
        ({"columns": ["patients.sex", "patients.sex"]}, "Choose columns from the lists shown"),
        ({"columns": []}, "Choose at least one column"),
        ({"window_start[day]": "x"}, "must be numbers"),
        ({"window_end[day]": "31", "window_end[month]": "2"}, "must be a real date"),
        ({"expires_on[year]": ""}, "Enter the expiry date"),
        ({"summary": "See LS1 4AP for details"}, "seems to contain"),
        ({"summary": "x" * 5000}, "4000 characters or fewer"),
        ({"recipient_kind": "commercial"}, "does not match the applying organisation"),
        ({"expires_on[year]": "2099"}, "at most five years ahead"),
    ]
    with client(app) as http:
        token = sign_in(http, world, email_of("researcher"))
        before = snapshot(world)
        for change, message in cases:
            _hostile(http, path, token, {**valid, **change}, message)
        assert snapshot(world) == before


def test_console_form_hostile_values(app, world):
    path = "/staff/projects/demo-research/console"
    valid = {"sql": COUNT_SQL, "epsilon": ""}
    cases = [
        ({"sql": ""}, "Enter a SQL query"),
        ({"sql": "SELECT 1\x00"}, "cannot be part of SQL"),
        ({"bounds": SCRIPT}, "not in the form name=LOW:HIGH"),
        ({"bounds": "x=1:0"}, "LOW below HIGH"),
        ({"epsilon": "abc"}, "Epsilon must be a number"),
        ({"epsilon": "nan"}, "Epsilon must be a number"),
        ({"epsilon": "-1"}, "Epsilon must be a number"),
        ({"epsilon": "1e9"}, "Epsilon must be a number"),
    ]
    with client(app) as http:
        token = sign_in(http, world, email_of("researcher"))
        before = snapshot(world)
        for change, message in cases:
            _hostile(http, path, token, {**valid, **change}, message)
        assert snapshot(world) == before
        # Script in SQL is not SQL: the TRE refuses it, says so, and records the refusal.
        ran = http.post(path, data={"csrf_token": token, **valid, "sql": SCRIPT})
        assert ran.status_code == 200 and "Refused" in ran.text and SCRIPT not in ran.text


def test_decision_and_vote_forms_hostile_values(app, world, fixtures):
    decide = "/staff/applications/hostile-submitted/decision"
    oversee = "/staff/applications/demo-planning/oversight"
    vote = f"/staff/reviews/{fixtures['held']}/vote"
    with client(app) as approver, client(app) as admin, client(app) as checker:
        a = sign_in(approver, world, email_of("approver"))
        d = sign_in(admin, world, email_of("administrator"))
        c = sign_in(checker, world, email_of("output_checker_1"))
        before = snapshot(world)
        for body, message in [
            ({"decision": "maybe", "reason": "Fine."}, "Choose approve or reject"),
            ({"decision": ["approve", "reject"], "reason": "Fine."}, "Choose approve or reject"),
            ({"decision": "approve", "reason": ""}, "Enter the reason"),
            ({"decision": "approve", "reason": SCRIPT}, "must not contain HTML"),
            ({"decision": "reject", "reason": "Patient at LS1 4AP"}, "seems to contain"),
            ({"decision": "reject", "reason": "x" * 2100}, "2000 characters or fewer"),
        ]:
            _hostile(approver, decide, a, body, message)
        for body, message in [
            ({"action": "delete", "reason": "Audit."}, "suspend or reinstate button"),
            ({"action": "suspend", "reason": " "}, "Enter the reason"),
        ]:
            _hostile(admin, oversee, d, body, message)
        for body, message in [
            ({"vote": "perhaps", "reason": "Fine."}, "Choose approve or reject"),
            ({"vote": "approve", "reason": ""}, "Enter the reason"),
            ({"vote": "reject", "reason": SCRIPT}, "must not contain HTML"),
        ]:
            _hostile(checker, vote, c, body, message)
        assert snapshot(world) == before


# --- tenant separation and roles --------------------------------------------------------------


def test_other_organisations_see_nothing(app, world, fixtures):
    released = fixtures["released"]
    with client(app) as pharma:
        token = sign_in(pharma, world, email_of("commercial"))
        before = snapshot(world)
        for path in (
            "/staff/projects/demo-research",
            "/staff/projects/demo-research/console",
            "/staff/projects/hostile-draft",
            f"/staff/queries/{released}",
            f"/staff/queries/{released}/output.csv",
            f"/staff/queries/{released}/output.json",
            "/staff/queries/not-an-id",
        ):
            page = pharma.get(path)
            assert page.status_code == 404, path
            assert "No " in page.text and "demo-university" not in page.text.lower()
        listed = pharma.get("/staff/projects").text
        assert "demo-commercial" in listed and "demo-research" not in listed
        for path, body in (
            ("/staff/projects/demo-research/console", {"sql": COUNT_SQL}),
            ("/staff/projects/hostile-draft/submit", {}),
        ):  # fmt: skip
            assert pharma.post(path, data={"csrf_token": token, **body}).status_code == 404
        assert snapshot(world) == before


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("researcher", "/staff/applications"),
        ("researcher", "/staff/applications/demo-planning"),
        ("researcher", "/staff/reviews"),
        ("approver", "/staff/projects"),
        ("approver", "/staff/reviews"),
        ("output_checker_1", "/staff/applications"),
        ("output_checker_1", "/staff/projects/new"),
        ("administrator", "/staff/reviews"),
    ],
)
def test_wrong_role_gets_a_clear_403(app, world, who, path):
    with client(app) as http:
        sign_in(http, world, email_of(who))
        page = http.get(path)
        assert page.status_code == 403 and "You need the" in page.text and "role" in page.text


def test_wrong_role_cannot_act(app, world, fixtures):
    with client(app) as checker, client(app) as approver:
        c = sign_in(checker, world, email_of("output_checker_1"))
        a = sign_in(approver, world, email_of("approver"))
        before = snapshot(world)
        decided = checker.post(
            "/staff/applications/hostile-submitted/decision",
            data={"csrf_token": c, "decision": "approve", "reason": "Fine."},
        )
        assert decided.status_code == 403
        voted = approver.post(
            f"/staff/reviews/{fixtures['held']}/vote",
            data={"csrf_token": a, "vote": "approve", "reason": "Fine."},
        )
        assert voted.status_code == 403
        suspended = approver.post(
            "/staff/applications/demo-planning/oversight",
            data={"csrf_token": a, "action": "suspend", "reason": "Audit."},
        )
        assert suspended.status_code == 403 and "Only administrators" in suspended.text
        assert snapshot(world) == before


@pytest.mark.parametrize(
    "path",
    [
        "/staff/projects",
        "/staff/projects/new",
        "/staff/projects/demo-research",
        "/staff/projects/demo-research/console",
        "/staff/applications",
        "/staff/reviews",
        "/staff/organisation",
    ],
)
def test_signed_out_pages_ask_to_sign_in(app, path):
    with client(app) as http:
        page = http.get(path)
        assert page.status_code == 401 and "Sign in" in page.text
