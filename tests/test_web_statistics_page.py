"""The opt-out statistics page stays compact and says what it hides: no run of empty months
from an old GP code, no 0 where small numbers are hidden, and no claim to cover all England."""

from __future__ import annotations

from datetime import date

import html5lib
import pytest
from fastapi.testclient import TestClient
from web_seed import build_home


@pytest.fixture
def http(tmp_path):
    seeded = build_home(tmp_path / "home")
    # One old type 1 code, recorded in 1999: a month series reaching back 27 years.
    seeded.registry.apply_gp_code(seeded.people[-1].nhs_number, True, date(1999, 3, 1))
    with TestClient(seeded.app(), base_url="https://testserver") as client:
        yield client
    seeded.close()


def test_the_page_is_compact_and_hides_small_numbers_as_hidden(http) -> None:
    page = http.get("/statistics")
    assert page.status_code == 200
    doc = html5lib.HTMLParser(namespaceHTMLElements=False).parse(page.text)
    month_rows = [
        th.text for th in doc.iter("th") if th.get("scope") == "row" and (th.text or "")[:2] == "20"
    ] + [th.text for th in doc.iter("th") if th.get("scope") == "row" and "1999" in (th.text or "")]
    assert not any(m.startswith("1999") for m in month_rows)
    assert 0 < len(month_rows) <= 24
    cells = [td.text for td in doc.iter("td")]
    assert "0" not in cells and "hidden" in cells
    assert "England" not in page.text
    assert "earlier months are in the open data" in page.text
    csv = http.get("/statistics.csv").text
    assert "1999-03" in csv  # the open data keeps every month
