"""The staff consoles in a real browser (Debian's Chromium): a researcher applies, an approver
approves, the researcher queries and sees suppressed cells labelled; a held output goes
through two independent checkers before release and download. Every page is screenshotted
and checked with axe-core; every form also works with JavaScript off."""

from __future__ import annotations

from pathlib import Path

import pytest
from web_console_world import (
    COUNT_SQL,
    HELD_SQL,
    SMALL_CELLS_SQL,
    build_console_world,
    email_of,
    serve,
)
from web_seed import csrf_of

pytestmark = pytest.mark.browser

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    made = build_console_world(tmp_path_factory.mktemp("console-browser") / "home")
    yield made
    made.close()


@pytest.fixture(scope="module")
def url(world):
    with serve(world.app()) as base:
        yield base


class Person:
    """One browser context signed in as one person, checking every page it reaches."""

    def __init__(self, browser, url, world, axe_source, screenshots, *, js: bool = True):
        self.context = browser.new_context(
            viewport={"width": 1024, "height": 800}, java_script_enabled=js
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.url, self.world, self.js = url, world, js
        self.axe, self.shots = axe_source, screenshots
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(m.text)
                if "Content Security Policy" in m.text or "Refused to" in m.text
                else None
            ),
        )

    def check(self, name: str, *, axe: bool = True) -> None:
        """Screenshot the page; with JavaScript on, axe-core must find nothing (``axe=False``
        for a page whose template and state were already checked)."""
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        assert self.problems == [], f"{name}: {self.problems}"
        if not (self.js and axe):
            return
        self.page.evaluate(self.axe)
        found = self.page.evaluate(
            "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
            ".violations.map(v => v.id + ': ' + v.help + ' @ '"
            " + v.nodes.map(n => n.target).join(' | '))",
            AXE_TAGS,
        )
        assert found == [], f"{name}: axe-core found {found}"

    def sign_in(self, key_or_email: str, prefix: str | None = None) -> None:
        """Sign in through the pages (checking them when ``prefix`` names their screenshots),
        or, without a prefix, by posting the same forms from the context (much quicker)."""
        email = email_of(key_or_email) if "@" not in key_or_email else key_or_email
        if prefix is None:
            http = self.context.request
            token = csrf_of(http.get(self.url + "/staff/sign-in").text())
            http.post(self.url + "/staff/sign-in", form={"csrf_token": token, "email": email})
            code = self.world.latest_code(email)
            http.post(self.url + "/staff/code", form={"csrf_token": token, "code": code})
            self.page.goto(self.url + "/staff")
            return
        page = self.page
        page.goto(self.url + "/staff")
        self.check(f"{prefix}-sign-in")
        page.get_by_label("Email address").fill(email)
        page.get_by_role("button", name="Send me a code").click()
        self.check(f"{prefix}-code")
        page.get_by_label("Code").fill(self.world.latest_code(email))
        page.get_by_role("button", name="Sign in").click()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser, url, world, axe_source, screenshots):
    made: list[Person] = []

    def person(**options) -> Person:
        made.append(Person(browser, url, world, axe_source, screenshots, **options))
        return made[-1]

    yield person
    for p in made:
        p.close()


def _fill_application(page, title: str) -> None:
    page.get_by_label("Title").fill(title)
    page.get_by_label("Research", exact=True).check()
    page.get_by_label("Public task").check()
    page.locator("#datasets").check()  # patients: source
    page.locator("#col-patients-sex").check()
    page.locator("#col-patients-birth_year").check()
    for name, (day, month, year) in {
        "window_start": ("1", "1", "2010"),
        "window_end": ("31", "12", "2024"),
        "expires_on": ("1", "6", "2029"),
    }.items():
        page.locator(f"#{name}-day").fill(day)
        page.locator(f"#{name}-month").fill(month)
        page.locator(f"#{name}-year").fill(year)
    page.get_by_label("Description").fill("Counts of people by birth band and sex.")


def test_apply_approve_query_review_release_download(people, world):
    researcher = people()
    page = researcher.page
    researcher.sign_in("researcher", prefix="staff")
    researcher.check("staff-home")
    page.get_by_role("link", name="Projects", exact=True).click()
    researcher.check("staff-projects")
    page.get_by_role("button", name="Apply for a project").click()
    researcher.check("staff-apply")
    page.get_by_role("button", name="Save application").click()
    researcher.check("staff-apply-errors")
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    _fill_application(page, "Birth bands in the browser")
    page.get_by_role("button", name="Save application").click()
    researcher.check("staff-project-draft")
    slug = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Submit for a decision").click()
    assert page.get_by_text("Waiting for a decision").first.is_visible()

    approver = people()
    approver.sign_in("approver")
    approver.page.get_by_role("link", name="Applications", exact=True).click()
    approver.check("staff-applications")
    approver.page.get_by_role("link", name="Birth bands in the browser").click()
    approver.check("staff-application")
    approver.page.get_by_label("Approve", exact=True).check()
    approver.page.get_by_label("Reason").fill("Proportionate and safe.")
    approver.page.get_by_role("button", name="Record the decision").click()
    approver.check("staff-application-decided", axe=False)
    assert approver.page.get_by_text("Proportionate and safe.").is_visible()

    page.goto(f"{researcher.url}/staff/projects/{slug}")
    researcher.check("staff-project-approved")
    page.get_by_role("button", name="Open the SQL console").click()
    researcher.check("staff-console")
    page.get_by_label("SQL query").fill(SMALL_CELLS_SQL)
    page.get_by_role("button", name="Run query").click()
    researcher.check("staff-query-released")
    table = page.locator("table").filter(has_text="born_before_1940")
    assert table.get_by_text("suppressed").first.is_visible()
    assert page.get_by_text("fewer than 10 people contribute").first.is_visible()

    for leaving in (False, True):  # the same table before and after one person leaves
        if leaving:
            world.leave(2)
        page.goto(f"{researcher.url}/staff/projects/demo-research/console")
        page.get_by_label("SQL query").fill(HELD_SQL)
        page.get_by_role("button", name="Run query").click()
    world.come_back(2)
    researcher.check("staff-query-held")
    assert page.get_by_text("Held for review").first.is_visible()
    query_url = page.url
    query_id = query_url.rsplit("/", 1)[1]

    one, two = people(), people()
    one.sign_in("output_checker_1")
    one.page.get_by_role("link", name="Output checking").first.click()
    one.check("staff-reviews")
    one.page.get_by_role("link", name=f"Review output {query_id[:8]}").click()
    one.check("staff-review")
    one.page.get_by_label("Approve: safe to release").check()
    one.page.get_by_label("Reason").fill("A single year over sixty people: safe.")
    one.page.get_by_role("button", name="Record my vote").click()
    one.check("staff-review-voted")
    two.sign_in("output_checker_2")
    two.page.goto(f"{two.url}/staff/reviews/{query_id}")
    assert two.page.get_by_text("A single year over sixty").count() == 0  # blind
    page.goto(query_url)
    assert page.get_by_text("Held for review").first.is_visible()  # one vote is not enough
    two.page.get_by_label("Approve: safe to release").check()
    two.page.get_by_label("Reason").fill("Agree.")
    two.page.get_by_role("button", name="Record my vote").click()
    two.check("staff-review-released", axe=False)
    assert two.page.get_by_text("A single year over sixty").is_visible()

    page.goto(query_url)
    researcher.check("staff-query-after-review", axe=False)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    assert Path(download.value.path()).read_text().startswith("sex,patients")

    page.goto(f"{researcher.url}/staff/reviews")
    researcher.check("staff-forbidden")
    assert page.get_by_role("heading", name="You cannot do this").is_visible()


def test_every_staff_form_works_without_javascript(people, world):
    access = world.parties.access
    access.add_person("demo-university", "Two Hats", "two-hats@uni.example", ["applicant"])
    access.add_person("demo-dac", "Two Hats", "two-hats@uni.example", ["output_checker"])
    held = world.held("planner", "demo-planning", person=5)

    planner = people(js=False)
    page = planner.page
    planner.sign_in("two-hats@uni.example", prefix="staff-nojs")
    planner.check("staff-organisation-nojs")
    page.get_by_label("Demo University").check()
    page.get_by_role("button", name="Continue").click()
    page.goto(planner.url + "/staff/projects/new")
    _fill_application(page, "No script application")
    page.get_by_role("button", name="Save application").click()
    page.get_by_role("button", name="Submit for a decision").click()
    assert page.get_by_text("Waiting for a decision").first.is_visible()
    page.goto(planner.url + "/staff/projects/demo-research/console")
    page.get_by_label("SQL query").fill(COUNT_SQL)
    page.get_by_role("button", name="Run query").click()
    planner.check("staff-query-nojs")
    assert page.get_by_text("Released").first.is_visible()
    page.goto(planner.url + "/staff/organisation")
    page.get_by_label("Demo Data Access Committee").check()
    page.get_by_role("button", name="Continue").click()
    page.goto(f"{planner.url}/staff/reviews/{held.id}")
    page.get_by_label("Reject: do not release").check()
    page.get_by_label("Reason").fill("Releases a single person's value.")
    page.get_by_role("button", name="Record my vote").click()
    assert page.get_by_text("Refused").first.is_visible()

    approver = people(js=False)
    approver.sign_in("approver")
    approver.page.goto(approver.url + "/staff/applications")
    approver.page.get_by_role("link", name="No script application").click()
    approver.page.get_by_label("Reject", exact=True).check()
    approver.page.get_by_label("Reason").fill("The data asked for does not fit the purpose.")
    approver.page.get_by_role("button", name="Record the decision").click()
    assert approver.page.get_by_text("Rejected").first.is_visible()
    approver.page.get_by_role("button", name="Sign out").click()
    approver.check("staff-signed-out-nojs")
    assert approver.page.get_by_role("heading", name="You have signed out").is_visible()
