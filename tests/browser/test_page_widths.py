"""Every public and patient page at a desktop width (1280 px) and a phone's (375 px): a
screenshot of each kept under test-artefacts/screenshots/widths/, and no page wider than its
viewport (nothing to scroll sideways, on a phone above all)."""

from __future__ import annotations

import socket

import pytest
from web_world import build_world, served

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": (1280, 800), "phone": (375, 740)}
PUBLIC = {
    "start": "/",
    "identity": "/identity",
    "proxy": "/proxy",
    "gp-letter": "/gp-letter",
    "about": "/about",
    "transparency": "/transparency",
    "statistics": "/statistics",
    "statistics-area": "/statistics?by=area",
    "register": "/register",
    "register-sorted": "/register?sort=patients",
    "demo-outbox": "/demo/outbox",
    "not-found": "/no-such-page",
}
SIGNED_IN = {
    "your-choices": "/your-choices",
    "change": "/change",
    "your-data-use": "/your-data-use",
}
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1
                 && !e.closest('.confide-table-scroll *'))
    .slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
              + ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = build_world(tmp_path_factory.mktemp("widths") / "home", patients=100)
    assert built.query("demo-research").status == "released"  # the register has a row
    yield built
    built.close()


@pytest.fixture(scope="module")
def site(world):
    with served(world.app(demo=True), _free_port()) as url:
        yield url


def _sign_in(page, site: str, world) -> None:
    form = world.people[3].form()
    page.goto(site + "/identity")
    page.fill("#nhs-number", form["nhs_number"])
    page.fill("#birth-date-day", form["birth[day]"])
    page.fill("#birth-date-month", form["birth[month]"])
    page.fill("#birth-date-year", form["birth[year]"])
    page.fill("#postcode", form["postcode"])
    page.click("button:has-text('Continue')")
    page.fill("#code", world.latest_code())
    page.click("button:has-text('Continue')")


@pytest.mark.parametrize("device", list(WIDTHS))
def test_every_page_fits_its_viewport(browser, site, world, screenshots, device) -> None:
    width, height = WIDTHS[device]
    context = browser.new_context(
        viewport={"width": width, "height": height}, is_mobile=device == "phone"
    )
    folder = screenshots / "widths" / device
    folder.mkdir(parents=True, exist_ok=True)
    too_wide: dict[str, object] = {}
    try:
        page = context.new_page()

        def visit(name: str, path: str | None) -> None:
            if path is not None:
                page.goto(site + path)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            seen = page.evaluate(OVERFLOW)
            if seen["scroll"] > seen["width"]:
                too_wide[name] = seen

        for name, path in PUBLIC.items():
            visit(name, path)
        _sign_in(page, site, world)
        visit("signed-in", None)
        for name, path in SIGNED_IN.items():
            visit(name, path)
    finally:
        context.close()
    assert too_wide == {}, f"pages wider than {width} px: {too_wide}"
    assert len(list(folder.glob("*.png"))) == len(PUBLIC) + len(SIGNED_IN) + 1
