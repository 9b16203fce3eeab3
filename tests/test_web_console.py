"""The staff consoles over a real installation: sign in, apply, approve, query, check, release,
download, with everything recorded in the ledger."""

from __future__ import annotations

import base64
import json

import html5lib
import pytest
from fastapi.testclient import TestClient
from web_console_world import (
    HELD_SQL,
    SMALL_CELLS_SQL,
    TOTAL_SQL,
    ConsoleWorld,
    build_console_world,
    email_of,
    sign_in,
)
from web_seed import csrf_of

from confide.access.signin import SignInConfig
from confide.choices.identity import mask


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> ConsoleWorld:
    made = build_console_world(tmp_path_factory.mktemp("console") / "home")
    yield made
    made.close()


@pytest.fixture(scope="module")
def app(world):
    return world.app()


def client(app) -> TestClient:
    return TestClient(app, base_url="https://testserver")


def parse(text: str):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def assert_page(response, status: int = 200):
    """A valid NHS.UK page: one h1, no inline script or style, CSRF on every post form."""
    assert response.status_code == status, response.text[:800]
    doc = parse(response.text)
    assert doc.find(".//main[@id='maincontent']") is not None and doc.find(".//h1") is not None
    for script in doc.iter("script"):
        assert script.get("src") and not (script.text or "").strip()
    assert not list(doc.iter("style")) and all(e.get("style") is None for e in doc.iter())
    for form in doc.iter("form"):
        if form.get("method") == "post":
            assert form.find(".//input[@name='csrf_token']") is not None
    return doc


def application(token: str, **changes) -> dict:
    """A valid application form (research by a university, on public task)."""
    form = {
        "csrf_token": token,
        "title": "Asthma in young adults",
        "slug": "",
        "purpose": "research",
        "recipient_kind": "academic",
        "legal_basis": "public_task",
        "columns": ["patients.birth_year", "patients.sex", "events.code", "events.date"],
        "window_start[day]": "1",
        "window_start[month]": "1",
        "window_start[year]": "2010",
        "window_end[day]": "31",
        "window_end[month]": "12",
        "window_end[year]": "2024",
        "expires_on[day]": "1",
        "expires_on[month]": "1",
        "expires_on[year]": "2030",
        "summary": "How often asthma is recorded, by sex and age band.",
    }
    form.update(changes)
    return form


def test_sign_in_sends_a_code_to_the_outbox_and_the_cookie_holds_no_identity(app, world):
    with client(app) as http:
        assert http.get("/staff", follow_redirects=False).headers["location"] == "/staff/sign-in"
        assert_page(http.get("/staff/sign-in"))
        sign_in(http, world, email_of("researcher"))
        home = assert_page(http.get("/staff"))
        assert "Demo University" in "".join(home.find(".//main").itertext())
        outbox = http.get("/demo/outbox").text
        assert mask(email_of("researcher")) in outbox and "Your Confide code is" in outbox
        raw = http.cookies.get("confide_session").split(".")[0]
        cookie = base64.b64decode(raw + "===").decode()
        assert set(json.loads(cookie)) <= {"csrf_token", "staff_token"}
        assert "university" not in cookie and "researcher" not in cookie


def test_unknown_email_looks_the_same_and_sends_nothing(app, world):
    with client(app) as http:
        token = csrf_of(http.get("/staff/sign-in").text)
        before = len(list(world.outbox.glob("*.json")))
        known = http.post("/staff/sign-in", data={"csrf_token": token, "email": "nobody@x.example"})
        assert known.status_code == 200 and "Enter your code" in known.text
        assert len(list(world.outbox.glob("*.json"))) == before
        wrong = http.post("/staff/code", data={"csrf_token": token, "code": "123456"})
        assert wrong.status_code == 422 and "not right" in wrong.text


def test_rate_limit_answers_too_many_attempts(world):
    app = world.app(config=SignInConfig(min_seconds=0, email_starts=2))
    with client(app) as http:
        token = csrf_of(http.get("/staff/sign-in").text)
        for _ in range(2):
            http.post("/staff/sign-in", data={"csrf_token": token, "email": "limit@x.example"})
        locked = http.post("/staff/sign-in", data={"csrf_token": token, "email": "limit@x.example"})
        assert locked.status_code == 429 and "Too many attempts" in locked.text


def test_sign_out_ends_the_session_at_once(app, world):
    with client(app) as http:
        token = sign_in(http, world, email_of("planner"))
        assert http.get("/staff/projects").status_code == 200
        assert_page(http.post("/staff/sign-out", data={"csrf_token": token}))
        ended = http.get("/staff/projects")
        assert ended.status_code == 401 and "Sign in" in ended.text


def test_researcher_applies_approver_approves_researcher_queries(app, world):
    since = world.parties.ledger.head().size
    with client(app) as researcher, client(app) as approver:
        token = sign_in(researcher, world, email_of("researcher"))
        assert_page(researcher.get("/staff/projects/new"))
        saved = researcher.post("/staff/projects/new", data=application(token))
        assert_page(saved)
        slug = str(saved.url).rsplit("/", 1)[1]
        assert slug.startswith("asthma-in-young-adults") and "Draft" in saved.text
        submitted = researcher.post(f"/staff/projects/{slug}/submit", data={"csrf_token": token})
        assert "Waiting for a decision" in submitted.text

        approver_token = sign_in(approver, world, email_of("approver"))
        queue = assert_page(approver.get("/staff/applications"))
        assert slug in "".join(queue.find(".//main").itertext())
        assert_page(approver.get(f"/staff/applications/{slug}"))
        no_reason = approver.post(
            f"/staff/applications/{slug}/decision",
            data={"csrf_token": approver_token, "decision": "approve", "reason": " "},
        )
        assert no_reason.status_code == 422 and "Enter the reason" in no_reason.text
        approved = approver.post(
            f"/staff/applications/{slug}/decision",
            data={"csrf_token": approver_token, "decision": "approve", "reason": "Proportionate."},
        )
        assert_page(approved)
        assert "Approved" in approved.text and "Proportionate." in approved.text

        project = assert_page(researcher.get(f"/staff/projects/{slug}"))
        text = "".join(project.find(".//main").itertext())
        assert "Proportionate." in text and "Open the SQL console" in text
        assert_page(researcher.get(f"/staff/projects/{slug}/console"))
        ran = researcher.post(
            f"/staff/projects/{slug}/console",
            data={"csrf_token": token, "sql": SMALL_CELLS_SQL},
        )
        outcome = assert_page(ran)
        text = " ".join(outcome.find(".//main").itertext())
        assert "Released" in text and "suppressed" in text and "cell-key method" in text
        assert "fewer than 10 people contribute" in text
        assert "Privacy budget left" not in text  # disclosure control: no budget
        query_id = str(ran.url).rsplit("/", 1)[1]
        csv = researcher.get(f"/staff/queries/{query_id}/output.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0] == "sex,patients,born_before_1940"
        data = researcher.get(f"/staff/queries/{query_id}/output.json").json()
        assert data["status"] == "released" and data["result"]["labels"]
        assert query_id in researcher.get(f"/staff/projects/{slug}").text  # past queries
    kinds = world.ledger_kinds(since)
    for kind in ("project_applied", "project_approved", "query_run", "output_checked", "release"):
        assert kind in kinds, kinds


def test_dp_mode_shows_intervals_and_spends_budget(app, world):
    with client(app) as http:
        token = sign_in(http, world, email_of("commercial"))
        before = world.parties.service.budget(world.principal("commercial"), "demo-commercial")
        form = assert_page(http.get("/staff/projects/demo-commercial/console"))
        assert "differential privacy" in "".join(form.find(".//main").itertext())
        ran = http.post(
            "/staff/projects/demo-commercial/console",
            data={"csrf_token": token, "sql": TOTAL_SQL, "epsilon": "0.5"},
        )
        assert ran.status_code == 200 and "95% interval" in ran.text
        after = world.parties.service.budget(world.principal("commercial"), "demo-commercial")
        assert after["epsilon_left"] == pytest.approx(before["epsilon_left"] - 0.5)


def test_refused_query_says_why_and_releases_nothing(app, world):
    with client(app) as http:
        token = sign_in(http, world, email_of("researcher"))
        ran = http.post(
            "/staff/projects/demo-research/console",
            data={"csrf_token": token, "sql": "SELECT * FROM read_csv('/etc/passwd')"},
        )
        doc = assert_page(ran)
        text = " ".join(doc.find(".//main").itertext())
        assert "Refused" in text and "read_csv" in text and "Download as CSV" not in text
        query_id = str(ran.url).rsplit("/", 1)[1]
        blocked = http.get(f"/staff/queries/{query_id}/output.csv")
        assert blocked.status_code == 409 and "Only released outputs" in blocked.text


def test_held_output_needs_two_blind_checkers_then_downloads(app, world):
    with client(app) as researcher:
        token = sign_in(researcher, world, email_of("researcher"))
        console = "/staff/projects/demo-research/console"
        first = researcher.post(console, data={"csrf_token": token, "sql": HELD_SQL})
        assert "Released" in first.text
        world.leave(3)
        try:
            ran = researcher.post(console, data={"csrf_token": token, "sql": HELD_SQL})
        finally:
            world.come_back(3)
        assert "Held for review" in ran.text and "differ" in ran.text
        query_id = str(ran.url).rsplit("/", 1)[1]
        assert researcher.get(f"/staff/queries/{query_id}/output.json").status_code == 409
    with client(app) as one, client(app) as two:
        one_token = sign_in(one, world, email_of("output_checker_1"))
        two_token = sign_in(two, world, email_of("output_checker_2"))
        queue = one.get("/staff/reviews")
        assert_page(queue)
        assert f"/staff/reviews/{query_id}" in queue.text
        review = assert_page(one.get(f"/staff/reviews/{query_id}"))
        assert "Overlap with other released cells" in "".join(review.find(".//main").itertext())
        first = one.post(
            f"/staff/reviews/{query_id}/vote",
            data={"csrf_token": one_token, "vote": "approve", "reason": "One value of many: safe."},
        )
        assert_page(first)
        assert "1 of 2" in first.text and "waits for the other" in first.text
        seen = two.get(f"/staff/reviews/{query_id}").text
        assert "One value of many" not in seen and "1 of 2" in seen  # blind
        again = one.post(
            f"/staff/reviews/{query_id}/vote",
            data={"csrf_token": one_token, "vote": "approve", "reason": "Twice."},
        )
        assert again.status_code == 422 and "already voted" in again.text
        final = two.post(
            f"/staff/reviews/{query_id}/vote",
            data={"csrf_token": two_token, "vote": "approve", "reason": "Agree: no small cell."},
        )
        assert "Released" in final.text and "One value of many" in final.text
    with client(app) as researcher:
        sign_in(researcher, world, email_of("researcher"))
        shown = researcher.get(f"/staff/queries/{query_id}")
        assert "Released" in shown.text and "Download as CSV" in shown.text
        csv = researcher.get(f"/staff/queries/{query_id}/output.csv")
        assert csv.status_code == 200 and csv.text.startswith("sex,patients")


def test_one_rejection_refuses_the_output(app, world):
    outcome = world.held(person=4)
    with client(app) as checker:
        token = sign_in(checker, world, email_of("output_checker_2"))
        rejected = checker.post(
            f"/staff/reviews/{outcome.id}/vote",
            data={"csrf_token": token, "vote": "reject", "reason": "Releases one value."},
        )
        assert "Refused" in rejected.text
    assert world.parties.tre_store.query(outcome.id).status == "refused"


def test_nobody_approves_their_own_application(app, world):
    access = world.parties.access
    access.add_person("demo-university", "Dual Role", "dual@university.example", ["applicant"])
    access.add_person("demo-dac", "Dual Role", "dual@university.example", ["approver"])
    with client(app) as http:
        token = sign_in(http, world, "dual@university.example", organisation="demo-university")
        saved = http.post(
            "/staff/projects/new", data=application(token, title="Own application test")
        )
        slug = str(saved.url).rsplit("/", 1)[1]
        http.post(f"/staff/projects/{slug}/submit", data={"csrf_token": token})
        assert "Change organisation" in http.get("/staff").text
        http.post("/staff/organisation", data={"csrf_token": token, "organisation": "demo-dac"})
        refused = http.post(
            f"/staff/applications/{slug}/decision",
            data={"csrf_token": token, "decision": "approve", "reason": "Looks fine."},
        )
        assert_page(refused, 403)
        assert "Nobody may decide their own application." in refused.text
    assert access.project(world.principal("researcher"), slug).status.value == "submitted"


def test_administrator_suspends_and_reinstates(app, world):
    with client(app) as admin, client(app) as researcher:
        token = sign_in(admin, world, email_of("administrator"))
        listed = assert_page(admin.get("/staff/applications"))
        assert "demo-research" in "".join(listed.find(".//main").itertext())
        suspended = admin.post(
            "/staff/applications/demo-research/oversight",
            data={"csrf_token": token, "action": "suspend", "reason": "Audit pending."},
        )
        assert "Suspended" in suspended.text
        sign_in(researcher, world, email_of("researcher"))
        blocked = researcher.get("/staff/projects/demo-research/console")
        assert blocked.status_code == 403 and "suspended" in blocked.text
        reinstated = admin.post(
            "/staff/applications/demo-research/oversight",
            data={"csrf_token": token, "action": "reinstate", "reason": "Audit passed."},
        )
        assert "Approved" in reinstated.text
        assert researcher.get("/staff/projects/demo-research/console").status_code == 200


def test_dp_bounds_reach_the_query(app, world):
    sql = "SELECT avg(2024 - p.birth_year) AS mean_value FROM patients p"
    form = {"sql": sql, "epsilon": "0.5"}
    with client(app) as http:
        token = sign_in(http, world, email_of("commercial"))
        url = "/staff/projects/demo-commercial/console"
        for bounds, message in [
            ("mean_value=abc", "not in the form name=LOW:HIGH"),
            ("mean_value=9:1", "LOW below HIGH"),
        ]:
            before = world.parties.ledger.head().size
            refused = http.post(url, data={"csrf_token": token, **form, "bounds": bounds})
            assert refused.status_code == 422 and message in refused.text
            assert world.parties.ledger.head().size == before  # nothing ran or was recorded
        missing = http.post(url, data={"csrf_token": token, **form})
        assert "needs bounds" in missing.text
        good = {"csrf_token": token, **form, "bounds": "\nmean_value=0:200\n"}
        ran = http.post(url, data=good)
        assert ran.status_code == 200 and "95% interval" in ran.text
        query_id = str(ran.url).rsplit("/", 1)[1]
        data = http.get(f"/staff/queries/{query_id}/output.json").json()
        low, high = data["result"]["intervals"][0]["mean_value"]
        assert 0 <= low <= high <= 200  # clamped to the bounds given in the form


def test_a_refused_query_can_be_changed_from_its_own_sql(app, world):
    """The outcome page links back to the console with the query's SQL in the box."""
    sql = "SELECT * FROM read_csv('/etc/passwd')"
    with client(app) as http:
        token = sign_in(http, world, email_of("researcher"))
        ran = http.post(
            "/staff/projects/demo-research/console", data={"csrf_token": token, "sql": sql}
        )
        query_id = str(ran.url).rsplit("/", 1)[1]
        link = f"/staff/projects/demo-research/console?change={query_id}"
        assert link in ran.text
        again = assert_page(http.get(link))
        box = again.find(".//textarea[@name='sql']")
        assert box is not None and (box.text or "").strip() == sql
        other = assert_page(http.get("/staff/projects/demo-research/console?change=nope"))
        assert not (other.find(".//textarea[@name='sql']").text or "").strip()


def test_the_console_lists_tables_as_a_list_not_as_markup(app, world):
    with client(app) as http:
        sign_in(http, world, email_of("researcher"))
        page = http.get("/staff/projects/demo-research/console")
        assert "&lt;li&gt;" not in page.text and "&lt;code&gt;" not in page.text
        doc = assert_page(page)
        items = ["".join(li.itertext()) for li in doc.iter("li")]
        assert any(item.startswith("patients: patient_id") for item in items), items
