"""The web app in a real browser: every page accessible (axe-core), no CSP violation, every
form usable without JavaScript, and the commercial opt-out done in at most six screens."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PUBLIC = {
    "start": "/",
    "identity": "/identity",
    "proxy": "/proxy",
    "gp-letter": "/gp-letter",
    "about": "/about",
    "transparency": "/transparency",
    "statistics": "/statistics",
    "demo-outbox": "/demo/outbox",
    "not-found": "/no-such-page",
}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


class Watched:
    """A page that records CSP violations and failed requests while it is used."""

    def __init__(self, context, base_url: str) -> None:
        self.page = context.new_page()
        self.base_url = base_url
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(m.text)
                if "Content Security Policy" in m.text or "Refused to" in m.text
                else None
            ),
        )
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))


def check_page(watched: Watched, axe_source: str, screenshots, name: str) -> None:
    page = watched.page
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    page.evaluate(axe_source)
    result = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => v.id + ': ' + v.help + ' @ '"
        " + v.nodes.map(n => n.target).join(' | '))",
        AXE_TAGS,
    )
    assert result == [], f"{name}: axe-core found {result}"
    assert watched.problems == [], f"{name}: {watched.problems}"


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 800})
    yield ctx
    ctx.close()


@pytest.fixture
def phone(browser):
    ctx = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    yield ctx
    ctx.close()


@pytest.fixture
def no_js(browser):
    ctx = browser.new_context(java_script_enabled=False)
    yield ctx
    ctx.close()


def test_public_pages_accessible(context, base_url, axe_source, screenshots):
    watched = Watched(context, base_url)
    for name, path in PUBLIC.items():
        watched.page.goto(base_url + path)
        check_page(watched, axe_source, screenshots, name)


def test_commercial_opt_out_in_six_screens(context, base_url, seeded, axe_source, screenshots):
    person = seeded.people[3]
    watched = Watched(context, base_url)
    page = watched.page
    screens = []

    def arrived(name: str) -> None:
        screens.append(page.url)
        check_page(watched, axe_source, screenshots, name)

    page.goto(base_url + "/")
    arrived("journey-1-start")
    page.get_by_role("button", name="Start now").click()
    arrived("journey-2-identity")
    form = person.form()
    page.get_by_label("NHS number").fill(form["nhs_number"])
    page.get_by_label("Day").fill(form["birth[day]"])
    page.get_by_label("Month").fill(form["birth[month]"])
    page.get_by_label("Year").fill(form["birth[year]"])
    page.get_by_label("Postcode").fill(form["postcode"])
    page.get_by_role("button", name="Continue").click()
    arrived("journey-3-code")
    page.get_by_label("Code").fill(seeded.latest_code())
    page.get_by_role("button", name="Continue").click()
    arrived("journey-4-your-choices")
    page.get_by_role("button", name="Change your choices").click()
    arrived("journey-5-change")
    before = seeded.registry.current(person.nhs_number)
    page.get_by_label("Do not let commercial companies use my data").set_checked(
        not before.no_commercial
    )
    page.get_by_role("button", name="Save my choices").click()
    arrived("journey-6-confirmation")
    assert page.get_by_role("heading", name="Choices saved").is_visible()
    assert len(screens) <= 6
    assert seeded.registry.current(person.nhs_number).no_commercial != before.no_commercial
    for url in screens:
        assert person.nhs_number not in url and "?" not in url


def test_errors_and_proxy_pages_accessible(phone, base_url, seeded, axe_source, screenshots):
    watched = Watched(phone, base_url)
    page = watched.page
    page.goto(base_url + "/identity")
    page.get_by_label("NHS number").fill("<script>alert(1)</script>")
    page.get_by_role("button", name="Continue").click()
    check_page(watched, axe_source, screenshots, "identity-errors-phone")
    page.goto(base_url + "/gp-letter")
    page.get_by_role("button", name="Get my letter (PDF)").click()
    check_page(watched, axe_source, screenshots, "gp-letter-errors-phone")
    page.goto(base_url + "/proxy")
    page.get_by_role("button", name="Continue for my child").click()
    check_page(watched, axe_source, screenshots, "proxy-identity-phone")
    page.goto(base_url + "/statistics")
    check_page(watched, axe_source, screenshots, "statistics-phone")


def test_every_form_works_without_javascript(no_js, base_url, seeded, screenshots):
    page = no_js.new_page()
    child = seeded.young_child
    # The GP letter form: a PDF download.
    page.goto(base_url + "/gp-letter")
    page.fill("#name", "Alex Example")
    page.fill("#address", "1 High Street\nLeeds")
    page.fill("#birth-date-day", "1")
    page.fill("#birth-date-month", "2")
    page.fill("#birth-date-year", "1970")
    page.fill("#practice", "High Street Surgery")
    with page.expect_download() as download:
        page.click("button:has-text('Get my letter')")
    assert download.value.suggested_filename == "type-1-opt-out-letter.pdf"
    # The statistics grouping form (GET).
    page.goto(base_url + "/statistics")
    page.select_option("#by", "area")
    page.click("button:has-text('Show')")
    assert "Postcode district" in page.content()
    # Proxy → identity → code → change → sign out, all as plain form posts.
    page.goto(base_url + "/proxy")
    page.click("button:has-text('Continue for my child')")
    form = child.form()
    page.fill("#nhs-number", form["nhs_number"])
    page.fill("#birth-date-day", form["birth[day]"])
    page.fill("#birth-date-month", form["birth[month]"])
    page.fill("#birth-date-year", form["birth[year]"])
    page.fill("#postcode", form["postcode"])
    page.click("button:has-text('Continue')")
    page.fill("#code", seeded.latest_code())
    page.click("button:has-text('Continue')")
    assert "Your child" in page.content()
    page.goto(base_url + "/change")
    page.check("input[value='no_research']")
    page.click("button:has-text('Save these choices')")
    page.screenshot(path=str(screenshots / "no-js-confirmation.png"), full_page=True)
    assert "Choices saved" in page.content()
    assert seeded.registry.current(child.nhs_number).no_research
    page.click("button:has-text('Sign out')")
    assert "You have signed out" in page.content()
