"""Hostile input on every form: a clear message, and nothing changes. No identifier leaks."""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_seed import build_home, csrf_of, sign_in

from confide.choices.identity import IdentityConfig
from confide.web.forms import MAX_BODY

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    # Generous limits: these tests sign in many times (the limits have their own tests).
    lenient = IdentityConfig(
        min_seconds=0, person_starts=10**6, client_starts=10**6, failures=10**6
    )
    home = build_home(tmp_path_factory.mktemp("web") / "home", people=6, config=lenient)
    yield home
    home.close()


@pytest.fixture
def http(seeded):
    with TestClient(seeded.app(demo=True), base_url="https://testserver") as client:
        yield client


def snapshot(seeded):
    """What a form could change: every person's choice history and the outbox."""
    history = {p.nhs_number: len(seeded.registry.history(p.nhs_number)) for p in seeded.people}
    return history, len(seeded.messages())


def forms(seeded, token):
    """Every form, filled in validly."""
    letter = {
        "name": "Alex Example",
        "address": "1 High Street\nLeeds",
        "birth[day]": "1",
        "birth[month]": "2",
        "birth[year]": "1970",
        "practice": "High Street Surgery",
    }
    return {
        "/identity": {"csrf_token": token, **seeded.adult.form()},
        "/code": {"csrf_token": token, "code": "123456"},
        "/change": {"csrf_token": token, "choices": "no_research"},
        "/proxy": {"csrf_token": token},
        "/sign-out": {"csrf_token": token},
        "/gp-letter": {"csrf_token": token, **letter},
    }


@pytest.mark.parametrize(
    "path", ["/identity", "/code", "/change", "/proxy", "/sign-out", "/gp-letter"]
)
@pytest.mark.parametrize("token", ["", "forged-token-forged-token-forged-token-xx"])
def test_csrf_refused_on_every_form(http, seeded, path, token):
    real = sign_in(http, seeded, seeded.adult)
    before = snapshot(seeded)
    body = forms(seeded, real)[path]
    body["csrf_token"] = token
    response = http.post(path, data=body)
    assert response.status_code == 403
    assert (
        "did not come from this website" in response.text and "Nothing was changed" in response.text
    )
    assert snapshot(seeded) == before
    assert http.get("/your-choices").status_code == 200  # still signed in: nothing changed


def test_csrf_token_of_another_session_refused(seeded):
    with TestClient(seeded.app(), base_url="https://testserver") as one:
        stolen = csrf_of(one.get("/identity").text)
    with TestClient(seeded.app(), base_url="https://testserver") as other:
        other.get("/identity")
        refused = other.post("/identity", data={"csrf_token": stolen, **seeded.adult.form()})
    assert refused.status_code == 403


@pytest.mark.parametrize("path", ["/identity", "/code", "/change", "/gp-letter"])
def test_oversized_and_unreadable_bodies(http, seeded, path):
    token = sign_in(http, seeded, seeded.adult)
    before = snapshot(seeded)
    big = http.post(path, data={"csrf_token": token, "x": "a" * (MAX_BODY + 1)})
    assert big.status_code == 413 and "too large" in big.text
    multipart = http.post(path, data={"csrf_token": token}, files={"f": ("a.txt", b"x")})
    assert multipart.status_code == 422 and "not sent the way" in multipart.text
    raw = http.post(
        path,
        content=b"csrf_token=" + token.encode() + b"&code=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code == 422 and "could not be read" in raw.text
    many = "&".join(f"f{i}=1" for i in range(100))
    flood = http.post(
        path, content=many.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert flood.status_code == 422
    assert snapshot(seeded) == before


def test_identity_form_hostile_values(http, seeded):
    token = csrf_of(http.get("/identity").text)
    before = snapshot(seeded)
    cases = [
        {
            "nhs_number": SCRIPT,
            "birth[day]": SCRIPT,
            "birth[month]": "x",
            "birth[year]": "y",
            "postcode": SCRIPT,
        },
        {
            "nhs_number": "9" * 5000,
            "birth[day]": "99",
            "birth[month]": "99",
            "birth[year]": "99999",
            "postcode": "Z" * 500,
        },
        {"nhs_number": "", "birth[day]": "", "birth[month]": "", "birth[year]": "", "postcode": ""},
        {
            "nhs_number": "1234567890",
            "birth[day]": "31",
            "birth[month]": "2",
            "birth[year]": "1990",
            "postcode": "NOT A CODE",
        },
    ]
    for case in cases:
        page = http.post("/identity", data={"csrf_token": token, **case})
        assert page.status_code == 422 and "There is a problem" in page.text
        assert SCRIPT not in page.text and "9" * 41 not in page.text  # kept, escaped and cut
        assert "9999999999" not in outside_fields(page.text)
    future = {**seeded.adult.form(), "birth[year]": "2999"}
    page = http.post("/identity", data={"csrf_token": token, **future})
    assert "must be in the past" in page.text
    assert snapshot(seeded) == before


def test_code_and_change_hostile_values(http, seeded):
    token = csrf_of(http.get("/identity").text)
    http.post("/identity", data={"csrf_token": token, **seeded.adult.form()})
    for code in [SCRIPT, "12", "1" * 999, "١٢٣٤٥٦"]:
        page = http.post("/code", data={"csrf_token": token, "code": code})
        assert page.status_code == 422 and "6 numbers" in page.text and SCRIPT not in page.text
    token = sign_in(http, seeded, seeded.adult)
    before = snapshot(seeded)
    for choices in [SCRIPT, "no_spam", ["no_research"] * 9, "NO_RESEARCH"]:
        page = http.post("/change", data={"csrf_token": token, "choices": choices})
        assert page.status_code == 422 and "Choose from the options shown" in page.text
        assert SCRIPT not in page.text
    assert snapshot(seeded) == before


def test_letter_hostile_values(http):
    token = csrf_of(http.get("/gp-letter").text)
    base = {
        "csrf_token": token,
        "name": "A",
        "address": "B",
        "birth[day]": "1",
        "birth[month]": "1",
        "birth[year]": "1970",
        "practice": "C",
    }
    cases = [
        ({"name": "x" * 101}, "100 characters or fewer"),
        ({"name": "🙂 Smiley"}, "cannot print"),
        ({"address": "\n".join("line" for _ in range(9))}, "6 lines or fewer"),
        ({"nhs_number": "1234567890"}, "valid 10-digit NHS number"),
        ({"practice": ""}, "Enter the GP practice name"),
        ({"birth[month]": SCRIPT}, "must be numbers"),
    ]
    for change, message in cases:
        page = http.post("/gp-letter", data={**base, **change})
        assert page.status_code == 422, change
        assert message in page.text and SCRIPT not in page.text


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.text(max_size=60), min_size=5, max_size=5))
def test_identity_form_never_fails_or_leaks(http, seeded, values):
    token = csrf_of(http.get("/identity").text)
    names = ["nhs_number", "birth[day]", "birth[month]", "birth[year]", "postcode"]
    page = http.post(
        "/identity", data={"csrf_token": token, **dict(zip(names, values, strict=True))}
    )
    assert page.status_code in (200, 422, 429)
    for value in values:
        if len(value.strip()) >= 5 and page.status_code == 422:
            shown = outside_fields(page.text)
            assert value not in shown or value in http.get("/identity").text


_FIELD_VALUE = re.compile(r'(<input\b[^>]*?\svalue=")[^"]*(")')


def outside_fields(html: str) -> str:
    """The page without what its form fields hold: a form that comes back with an error shows
    what was typed in its own fields (on a no-store page), and nowhere else."""
    return _FIELD_VALUE.sub(r"\1\2", re.sub(r"(<textarea\b[^>]*>)[^<]*", r"\1", html))


def _session_cookie(http) -> dict:
    raw = http.cookies.get("confide_session")
    payload = raw.split(".")[0]
    return json.loads(base64.b64decode(payload + "==="))


def test_no_identifier_in_urls_cookies_logs_or_pages(http, seeded, caplog):
    caplog.set_level(logging.DEBUG)
    person = seeded.adult
    secrets = {
        person.nhs_number,
        f"{person.nhs_number[:3]} {person.nhs_number[3:6]} {person.nhs_number[6:]}",
        person.birth_date.isoformat(),
        person.postcode,
        person.postcode.replace(" ", ""),
    }
    seen: list[str] = []
    http.event_hooks["response"] = [lambda r: seen.append(str(r.request.url))]
    token = sign_in(http, seeded, person)
    http.post("/change", data={"csrf_token": token, "choices": "no_commercial"})
    pages = [http.get(p).text for p in ("/your-choices", "/confirmation", "/change")]
    bad = http.post("/identity", data={"csrf_token": token, **person.form(), "postcode": "X"})
    pages.append(outside_fields(bad.text))  # typed values come back in the form's own fields
    cookie = json.dumps(_session_cookie(http))
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert all(secret not in url for url in seen)
        assert secret not in cookie
        assert secret not in logs
        assert all(secret not in page for page in pages)


def test_unexpected_error_page_and_log_are_generic(seeded, caplog):
    app = seeded.app()

    @app.get("/boom")
    def boom():
        raise RuntimeError(f"database said {seeded.adult.nhs_number}")

    caplog.set_level(logging.DEBUG)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        page = client.get("/boom")
    assert page.status_code == 500 and "Sorry, there is a problem" in page.text
    assert page.headers["content-security-policy"]
    assert seeded.adult.nhs_number not in page.text
    assert seeded.adult.nhs_number not in "\n".join(r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records if r.name.startswith("confide"))
