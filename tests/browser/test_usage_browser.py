"""The release register and the usage report in a real browser, over a fully wired home.

The story the issue asks for: a patient opts out of commercial use from the start page in at
most six screens; the next query of a commercial project leaves them out (its release's
excluded file holds them, its contributors file does not); and their usage report then shows
that release as excluding them. Every page is screenshotted and checked with axe-core, and the
register and the report are used again with JavaScript off.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from web_world import build_world, served

pytestmark = pytest.mark.browser

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The home, with one research and one commercial release already made (so every test
    has rows and proofs, whichever order or worker it runs in)."""
    built = build_world(tmp_path_factory.mktemp("usage-browser") / "home", patients=100)
    for project in ("demo-research", "demo-commercial"):
        assert built.query(project).status == "released"
    yield built
    built.close()


@pytest.fixture(scope="module")
def site(world):
    with served(world.app(demo=True), _free_port()) as url:
        yield url


class Page:
    """A browser tab that records CSP violations and failed requests, and checks each screen."""

    def __init__(self, context, axe_source: str, screenshots) -> None:
        self.page = context.new_page()
        self.axe = axe_source
        self.screenshots = screenshots
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(m.text) if "Refused to" in m.text else None,
        )
        # A request the browser itself cancels (a favicon still loading when the next page is
        # asked for) is not a fault of the page; any other failure is.
        self.page.on(
            "requestfailed",
            lambda r: (
                self.problems.append(f"failed: {r.url}")
                if r.failure != "net::ERR_ABORTED"
                else None
            ),
        )

    def check(self, name: str, *, axe: bool = True) -> None:
        self.page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)
        if axe:
            self.page.evaluate(self.axe)
            found = self.page.evaluate(
                "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
                ".violations.map(v => v.id + ': ' + v.help + ' @ '"
                " + v.nodes.map(n => n.target).join(' | '))",
                AXE_TAGS,
            )
            assert found == [], f"{name}: axe-core found {found}"
        assert self.problems == [], f"{name}: {self.problems}"


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 800}, accept_downloads=True)
    yield ctx
    ctx.close()


@pytest.fixture
def no_js(browser):
    ctx = browser.new_context(java_script_enabled=False, accept_downloads=True)
    yield ctx
    ctx.close()


def sign_in(tab, site: str, world, person) -> None:
    page = tab.page
    page.goto(site + "/identity")
    form = person.form()
    page.fill("#nhs-number", form["nhs_number"])
    page.fill("#birth-date-day", form["birth[day]"])
    page.fill("#birth-date-month", form["birth[month]"])
    page.fill("#birth-date-year", form["birth[year]"])
    page.fill("#postcode", form["postcode"])
    page.click("button:has-text('Continue')")
    page.fill("#code", world.latest_code())
    page.click("button:has-text('Continue')")


def test_commercial_opt_out_shows_in_queries_and_in_the_usage_report(
    context, site, world, axe_source, screenshots
):
    person = world.people[0]
    before = world.query("demo-commercial")
    assert before.status == "released", before.reason
    assert world.in_release(before.release_id, person, "contributors")

    tab = Page(context, axe_source, screenshots)
    page = tab.page
    screens: list[str] = []

    def arrived(name: str) -> None:
        screens.append(page.url)
        tab.check(name)

    page.goto(site + "/")
    arrived("usage-journey-1-start")
    page.get_by_role("button", name="Start now").click()
    arrived("usage-journey-2-identity")
    form = person.form()
    page.get_by_label("NHS number").fill(form["nhs_number"])
    page.get_by_label("Day").fill(form["birth[day]"])
    page.get_by_label("Month").fill(form["birth[month]"])
    page.get_by_label("Year").fill(form["birth[year]"])
    page.get_by_label("Postcode").fill(form["postcode"])
    page.get_by_role("button", name="Continue").click()
    arrived("usage-journey-3-code")
    page.get_by_label("Code").fill(world.latest_code())
    page.get_by_role("button", name="Continue").click()
    arrived("usage-journey-4-your-choices")
    page.get_by_role("button", name="Change your choices").click()
    arrived("usage-journey-5-change")
    page.get_by_label("Do not let commercial companies use my data").check()
    page.get_by_role("button", name="Save my choices").click()
    arrived("usage-journey-6-confirmation")
    assert page.get_by_role("heading", name="Choices saved").is_visible()
    assert len(screens) <= 6
    assert world.registry.current(person.nhs_number).no_commercial

    # At once: the very next commercial query leaves the person out.
    after = world.query("demo-commercial")
    assert after.status == "released", after.reason
    assert world.in_release(after.release_id, person, "excluded")
    assert not world.in_release(after.release_id, person, "contributors")

    page.get_by_role("link", name="See how your data has been used").click()
    screens.append(page.url)
    tab.check("usage-report")
    left_out = page.locator(".nhsuk-card", has_text=after.release_id)
    assert left_out.get_by_text("Your data was left out").is_visible()
    assert left_out.get_by_text("Do not let commercial companies use my data").is_visible()
    used = page.locator(".nhsuk-card", has_text=before.release_id)
    assert used.get_by_text("Your data was used").is_visible()
    left_out.get_by_text("The proof that this release is in the public log").click()
    assert left_out.get_by_text("Audit path").is_visible()
    tab.check("usage-report-proof-open")
    for url in screens:
        assert person.nhs_number not in url and "?" not in url


def test_register_filter_and_download(context, site, world, axe_source, screenshots):
    tab = Page(context, axe_source, screenshots)
    page = tab.page
    page.goto(site + "/register")
    tab.check("register")
    everything = page.locator("tbody tr").count()
    assert everything >= 1
    page.select_option("#purpose", "research")
    page.select_option("#recipient", "academic")
    page.click("button:has-text('Show releases')")
    assert "recipient=academic" in page.url
    tab.check("register-filtered")
    rows = page.locator("tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert "A university or research institute" in rows.nth(i).inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as a spreadsheet (CSV)").click()
    assert download.value.suggested_filename == "confide-release-register.csv"
    lines = Path(download.value.path()).read_text(encoding="utf-8").strip().splitlines()
    assert lines[0].startswith("log_index,release_id") and len(lines) == rows.count() + 1
    assert all(",academic," in line for line in lines[1:])
    page.goto(site + "/register?page=abc")
    tab.check("register-bad-address")
    assert page.get_by_role("heading", name="There is a problem with the register's web address")


def test_register_and_usage_work_without_javascript(no_js, site, world, screenshots):
    tab = Page(no_js, "", screenshots)
    page = tab.page
    page.goto(site + "/register")
    page.select_option("#recipient", "commercial")
    page.select_option("#sort", "patients")
    page.click("button:has-text('Show releases')")
    assert "recipient=commercial" in page.url and "sort=patients" in page.url
    tab.check("no-js-register-filtered", axe=False)
    assert page.locator("tbody tr").count() >= 1
    sign_in(tab, site, world, world.people[3])
    page.click("text=See how your data has been used")
    tab.check("no-js-usage-report", axe=False)
    assert page.get_by_role("heading", name="How your data has been used").is_visible()
    page.locator("summary").first.click()  # <details> opens without any script
    assert page.get_by_text("Audit path").first.is_visible()


def test_register_on_a_phone(browser, site, axe_source, screenshots):
    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        tab = Page(phone, axe_source, screenshots)
        tab.page.goto(site + "/register?sort=patients")
        tab.check("register-phone")
        assert tab.page.get_by_role("region", name="Releases").is_visible()
    finally:
        phone.close()
