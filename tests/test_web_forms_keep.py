"""A form that comes back with an error keeps everything that was typed (identity check and
GP letter), escaped, so nobody retypes the fields that were right."""

from __future__ import annotations

import html5lib
import pytest
from fastapi.testclient import TestClient
from web_seed import build_home, csrf_of


@pytest.fixture
def http(tmp_path):
    seeded = build_home(tmp_path / "home")
    with TestClient(seeded.app(demo=True), base_url="https://testserver") as client:
        yield client
    seeded.close()


def _values(text: str) -> dict[str, str]:
    doc = html5lib.HTMLParser(namespaceHTMLElements=False).parse(text)
    out = {e.get("name"): e.get("value") or "" for e in doc.iter("input") if e.get("name")}
    out.update({e.get("name"): e.text or "" for e in doc.iter("textarea")})
    return out


def test_identity_check_keeps_the_fields_that_were_right(http) -> None:
    token = csrf_of(http.get("/identity").text)
    typed = {
        "nhs_number": "943 476 5919",
        "birth[day]": "31",
        "birth[month]": "2",
        "birth[year]": "1980",
        "postcode": "LS1 4AP",
    }
    back = http.post("/identity", data={"csrf_token": token, **typed})
    assert back.status_code == 422 and "real date" in back.text
    values = _values(back.text)
    assert {name: values[name] for name in typed} == typed


def test_gp_letter_keeps_what_was_typed_and_escapes_it(http) -> None:
    token = csrf_of(http.get("/gp-letter").text)
    typed = {
        "name": 'Ann "<b>" Smith',
        "address": "1 High Street\nLeeds",
        "birth[day]": "1",
        "birth[month]": "2",
        "birth[year]": "1980",
        "nhs_number": "12345",
        "practice": "The Surgery",
        "practice_address": "",
    }
    back = http.post("/gp-letter", data={"csrf_token": token, **typed})
    assert back.status_code == 422 and "valid 10-digit NHS number" in back.text
    assert "<b>" not in back.text  # escaped, never markup
    values = _values(back.text)
    for name, value in typed.items():
        assert values[name].strip() == value.strip(), name
