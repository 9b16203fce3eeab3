"""The roll-out in a real browser (Debian's Chromium): the public roll-out page shows which
areas and practices are live, paused or declined, and the operators' pause page pauses and
resumes Confide for a signed-in operator (and for nobody else). Every page is screenshotted
and checked with axe-core."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from web_console_world import COUNT_SQL, build_console_world, email_of, serve
from web_seed import csrf_of

from confide.rollout.service import Rollout

pytestmark = pytest.mark.browser

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    made = build_console_world(tmp_path_factory.mktemp("rollout-browser") / "home")
    rollout = Rollout.open(made.home, made.parties.ledger)
    today = date.today()
    rollout.set_area("E54000050", name="Pilot area", wave=0, start_date=today, role="operator")
    later = today + timedelta(days=60)
    rollout.set_area(
        "E54000051", name="Second wave area", wave=1, start_date=later, role="operator"
    )
    rollout.set_practice("B86001", "joined", role="practice", area="E54000050")
    rollout.set_practice("B86003", "joined", role="practice", area="E54000051")
    rollout.set_practice("B86002", "declined", role="practice", reason="Not now")
    rollout.close()
    yield made
    made.close()


@pytest.fixture(scope="module")
def url(world):
    with serve(world.app()) as base:
        yield base


@pytest.fixture
def page(browser, screenshots, axe_source):
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    made = context.new_page()
    made.set_default_timeout(10_000)

    def check(name: str) -> None:
        made.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        made.evaluate(axe_source)
        found = made.evaluate(
            "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
            ".violations.map(v => v.id + ': ' + v.help)",
            AXE_TAGS,
        )
        assert found == [], f"{name}: axe-core found {found}"

    made.check = check  # type: ignore[attr-defined]
    yield made
    context.close()


def _sign_in(page, url: str, world, key: str) -> None:
    http = page.context.request
    email = email_of(key)
    token = csrf_of(http.get(url + "/staff/sign-in").text())
    http.post(url + "/staff/sign-in", form={"csrf_token": token, "email": email})
    http.post(url + "/staff/code", form={"csrf_token": token, "code": world.latest_code(email)})


def _status(page, ods: str) -> str:
    return page.locator(f'tr[data-ods="{ods}"] td').nth(1).inner_text()


def test_the_public_page_shows_areas_practices_and_figures(page, url) -> None:
    page.goto(url + "/rollout")
    page.check("rollout-public")
    assert page.get_by_role("heading", name="Where Confide is live").is_visible()
    assert "Confide is running" in page.locator("#national-status").inner_text()
    areas = page.locator("#areas").inner_text()
    assert "Pilot area" in areas and "Pilot" in areas and "Starts later" in areas
    assert _status(page, "B86001") == "Live"
    assert _status(page, "B86002") == "Declined"
    assert _status(page, "B86003") == "Starts later"
    assert "8 weeks" in page.locator("main").inner_text()


def test_an_operator_pauses_and_resumes_from_the_pause_page(page, url, world) -> None:
    _sign_in(page, url, world, "operator")
    page.goto(url + "/staff/rollout")
    page.check("rollout-pause")
    page.get_by_role("button", name="Pause Confide nationally").click()
    assert "Enter" in page.locator(".nhsuk-error-summary").inner_text() or (
        "reason" in page.locator(".nhsuk-error-summary").inner_text().lower()
    )
    page.check("rollout-pause-error")
    page.get_by_label("Reason").fill("Incident under review")
    page.get_by_role("button", name="Pause Confide nationally").click()
    assert "paused nationally" in page.locator("#national-status").inner_text()
    page.check("rollout-paused")

    researcher = world.parties.access.principal_for(*_org_email("researcher"))
    refused = world.parties.service.run(researcher, "demo-research", COUNT_SQL)
    assert refused.status == "refused" and "paused" in (refused.reason or "")
    page.goto(url + "/rollout")
    assert "Incident under review" in page.locator("#national-status").inner_text()
    assert _status(page, "B86001") == "Paused"
    page.check("rollout-public-paused")

    page.goto(url + "/staff/rollout")
    page.get_by_label("Reason").fill("Review complete")
    page.get_by_role("button", name="Resume Confide").click()
    assert "running" in page.locator("#national-status").inner_text()
    assert world.parties.service.run(researcher, "demo-research", COUNT_SQL).status == "released"


def _org_email(key: str) -> tuple[str, str]:
    from confide.access.seed import PEOPLE

    org, _, email, _ = PEOPLE[key]
    return org, email


def test_people_without_the_operator_role_cannot_pause(page, url, world) -> None:
    _sign_in(page, url, world, "researcher")
    reply = page.goto(url + "/staff/rollout")
    assert reply is not None and reply.status == 403
    assert "operator role" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="Pause Confide nationally").count() == 0
