"""Every page renders as valid HTML with the NHS.UK design system and the security headers."""

from __future__ import annotations

import html5lib
import pytest
from fastapi.testclient import TestClient
from web_seed import build_home, sign_in

from confide.web.security import CONTENT_SECURITY_POLICY

PUBLIC_PAGES = [
    "/",
    "/identity",
    "/proxy",
    "/gp-letter",
    "/about",
    "/transparency",
    "/statistics",
    "/statistics?by=area",
    "/register",
    "/demo/outbox",
]
SIGNED_IN_PAGES = ["/your-choices", "/change"]


@pytest.fixture
def seeded(tmp_path):
    home = build_home(tmp_path / "home")
    yield home
    home.close()


@pytest.fixture
def http(seeded):
    with TestClient(seeded.app(demo=True), base_url="https://testserver") as client:
        yield client


def parse(text: str):
    """Parse strictly: any HTML parse error fails the test."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def assert_page(response, status: int = 200):
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    doc = parse(response.text)
    assert doc.find(".//main[@id='maincontent']") is not None
    assert doc.find(".//h1") is not None, "every page has a heading"
    assert doc.find(".//header[@class='nhsuk-header']") is not None
    links = {e.get("href") for e in doc.iter("link")}
    assert "/assets/nhsuk/nhsuk-frontend.min.css" in links
    for script in doc.iter("script"):
        assert script.get("src"), "no inline scripts"
        assert not (script.text or "").strip()
    assert not list(doc.iter("style")), "no inline style elements"
    assert all(e.get("style") is None for e in doc.iter()), "no style attributes"
    for form in doc.iter("form"):
        if form.get("method") == "post":
            assert form.find(".//input[@name='csrf_token']") is not None, "every form has CSRF"
    return doc


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_render(http, path):
    assert_page(http.get(path))


def test_signed_in_pages_render(http, seeded):
    sign_in(http, seeded, seeded.adult)
    for path in SIGNED_IN_PAGES:
        assert_page(http.get(path))


def test_signed_out_pages_say_what_to_do(http):
    for path in [*SIGNED_IN_PAGES, "/confirmation"]:
        doc = assert_page(http.get(path), 401)
        assert "Your session has ended" in doc.find(".//h1").text


def test_not_found_page(http):
    doc = assert_page(http.get("/no-such-page"), 404)
    assert doc.find(".//h1").text == "Page not found"


def test_security_headers_everywhere(http):
    for path in ["/", "/no-such-page", "/assets/confide.css", "/api/ledger/checkpoint"]:
        headers = http.get(path).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        assert "style-src 'self'" in CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["strict-transport-security"].startswith("max-age=")
    assert http.get("/").headers["cache-control"] == "no-store"


def test_no_hsts_over_plain_http(seeded):
    with TestClient(seeded.app(), base_url="http://testserver") as client:
        assert "strict-transport-security" not in client.get("/").headers


def test_session_cookie_flags(http):
    response = http.get("/identity")
    cookie = response.headers["set-cookie"].lower()
    assert "confide_session=" in cookie
    for flag in ("secure", "httponly", "samesite=strict", "path=/"):
        assert flag in cookie


def test_demo_outbox_only_in_demo(seeded):
    with TestClient(seeded.app(), base_url="https://testserver") as client:
        assert client.get("/demo/outbox").status_code == 404
        assert "demo outbox" not in client.get("/identity").text.lower()


def test_apis_are_mounted(http):
    checkpoint = http.get("/api/ledger/checkpoint").json()
    assert checkpoint["size"] == 2
    assert http.get("/api/choices/me").status_code == 401
    assert http.get("/api/access/projects").status_code == 401
    assert http.get("/api/openapi.json").status_code == 200
    assert http.get("/docs").status_code == 404  # interactive docs need third-party scripts


def test_transparency_shows_latest_checkpoint(http, seeded):
    doc = assert_page(http.get("/transparency"))
    text = "".join(doc.itertext())
    head = seeded.ledger.head()
    assert head.root.hex() in text and seeded.ledger.verifier.vkey in text
    assert "confide ledger verify --url https://testserver/api/ledger" in text
    codes = [c.text for c in doc.iter("code")]
    assert head.root.hex() in codes  # shown as code, not as escaped markup
    assert "<code" not in text


def test_statistics_table_and_chart(http):
    doc = assert_page(http.get("/statistics"))
    svg = doc.find(".//{http://www.w3.org/2000/svg}svg")
    assert svg is not None and svg.get("role") == "img"
    cells = [td.text for td in doc.iter("td")]
    # 27 people hold no_commercial: 13 and 14 per practice, each published perturbed and
    # rounded to 5; the total is added up from the published cells, never the true counts.
    numbers = [int(c) for c in cells if c and c.isdigit()]
    assert numbers and all(n % 5 == 0 for n in numbers)
    assert not {"13", "14", "27"} & set(cells), "true counts are never shown"
    area = [td.text for td in assert_page(http.get("/statistics?by=area")).iter("td")]
    assert "hidden" in area and not {"6", "7"} & set(area)
    bad = http.get("/statistics?by=nhs_number")
    assert bad.status_code == 422 and "grouped by GP practice" in bad.text


def test_statistics_csv(http):
    response = http.get("/statistics.csv?by=practice")
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "month,practice,choice,people,redacted"
    totals = [line for line in lines if ",total,no_commercial," in line]
    assert totals and all(int(line.split(",")[3]) % 5 == 0 for line in totals)
    area = http.get("/statistics.csv?by=area").text.splitlines()
    assert all(line.endswith(",,yes") for line in area[1:] if ",total," not in line)


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/identity", {"nhs_number", "birth[day]", "birth[month]", "birth[year]", "postcode"}),
        (
            "/gp-letter",
            {
                "name",
                "address",
                "birth[day]",
                "birth[month]",
                "birth[year]",
                "nhs_number",
                "practice",
                "practice_address",
                "choices",
            },
        ),
    ],
)
def test_forms_send_the_fields_the_server_reads(http, path, names):
    doc = parse(http.get(path).text)
    form = next(f for f in doc.iter("form") if f.get("action") == path)
    sent = {e.get("name") for e in form.iter() if e.tag in ("input", "textarea", "select")}
    assert sent == names | {"csrf_token"}
