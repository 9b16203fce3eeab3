"""The public release register page: built from the log only, filtered and sorted by plain GET
parameters, downloads that hold exactly the rows the page lists, every row provable, and
hostile addresses refused with a clear page that repeats nothing and changes nothing."""

from __future__ import annotations

import base64
import csv
import io
import json

import html5lib
import pytest
from fastapi.testclient import TestClient
from release_helpers import apply_project, publish_release, releases_folder
from web_seed import build_home

from confide.ledger import merkle
from confide.web.pages import register as register_page

# (release id, project, organisation, purpose, recipient, date, contributors)
RELEASES = [
    ("R-LEEDS-1", "P-0001", "University of Leeds", "research", "academic", "2025-01-10", 40),
    ("R-ICB-1", "P-0002", "West Yorkshire ICB", "planning", "nhs", "2025-02-01", 90),
    ("R-PHARMA-1", "P-0003", "Acme Pharma Ltd", "research", "commercial", "2025-03-05", 25),
    ("R-LEEDS-2", "P-0001", "University of Leeds", "research", "academic", "2025-04-20", 60),
    ("R-CHARITY-1", "P-0004", "Heart Charity", "public_health", "charity", "2025-05-02", 15),
]
TITLES = {
    "P-0001": "Diabetes <b>outcomes</b>",  # markup in the log must be shown as text
    "P-0002": "Winter bed capacity",
    "P-0003": "Statin prescribing patterns",
    "P-0004": "Blood pressure in the community",
}
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    home = build_home(tmp_path_factory.mktemp("register") / "home", people=4)
    folder = releases_folder(home.home)
    organisations = {r[1]: r[2] for r in RELEASES}
    for project, title in TITLES.items():
        apply_project(home.ledger, project, title, organisation=organisations[project])
    for release, project, org, purpose, recipient, day, people in RELEASES:
        publish_release(
            home.ledger,
            folder,
            release,
            contributors=[f"p{i}" for i in range(people)],
            project_id=project,
            organisation=org,
            purpose=purpose,
            recipient_kind=recipient,
            date=day,
            opt_outs_applied=recipient != "nhs",
            **({} if recipient != "nhs" else {"opt_outs_reason": "opt-outs not applied: COPI"}),
        )
    yield home
    home.close()


@pytest.fixture(scope="module")
def http(seeded):
    with TestClient(seeded.app(), base_url="https://testserver") as client:
        yield client


def parse(text: str):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def shown(response) -> list[str]:
    """The release ids of the page's rows, in order (the rows' anchors)."""
    assert response.status_code == 200, response.text[:400]
    doc = parse(response.text)
    return [tr.get("id").removeprefix("release-") for tr in doc.iter("tr") if tr.get("id")]


def csv_ids(response) -> list[str]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return [row["release_id"] for row in csv.DictReader(io.StringIO(response.text))]


def json_ids(response) -> list[str]:
    assert response.status_code == 200
    return [r["release_id"] for r in response.json()["releases"]]


def by(field: int, wanted: str) -> list[str]:
    return [r[0] for r in RELEASES if r[field] == wanted]


def test_every_release_is_listed_newest_first_with_its_facts(http):
    page = http.get("/register")
    assert shown(page) == [r[0] for r in sorted(RELEASES, key=lambda r: r[5], reverse=True)]
    text = page.text
    assert "Diabetes &lt;b&gt;outcomes&lt;/b&gt;" in text and "<b>outcomes" not in text
    for words in ("West Yorkshire ICB", "Planning NHS services", "A commercial company", "COPI"):
        assert words in text
    doc = parse(text)
    nav = doc.find(".//nav[@class='nhsuk-header__navigation']")
    assert any(a.get("href") == "/register" for a in nav.iter("a")), "the register is in the nav"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"organisation": "University of Leeds"}, by(2, "University of Leeds")),
        ({"organisation": "university of leeds"}, by(2, "University of Leeds")),
        ({"purpose": "research"}, by(3, "research")),
        ({"recipient": "commercial"}, by(4, "commercial")),
        ({"project": "capacity"}, ["R-ICB-1"]),  # part of the title
        ({"project": "p-0004"}, ["R-CHARITY-1"]),  # part of the id, any case
        ({"purpose": "research", "recipient": "academic"}, by(4, "academic")),
        ({"purpose": "planning", "recipient": "commercial"}, []),
    ],
)
def test_filters_choose_rows_and_downloads_hold_the_same(http, params, expected):
    newest_first = sorted(expected, key=lambda i: next(r[5] for r in RELEASES if r[0] == i))[::-1]
    assert shown(http.get("/register", params=params)) == newest_first
    assert csv_ids(http.get("/register.csv", params=params)) == newest_first
    assert json_ids(http.get("/register.json", params=params)) == newest_first


@pytest.mark.parametrize(
    ("params", "key", "reverse"),
    [
        ({"sort": "patients", "order": "asc"}, lambda r: r[6], False),
        ({"sort": "patients"}, lambda r: r[6], True),
        ({"sort": "date", "order": "asc"}, lambda r: r[5], False),
        ({"sort": "project", "order": "asc"}, lambda r: TITLES[r[1]].lower(), False),
    ],
)
def test_sorting(http, params, key, reverse):
    # Ties (the two Leeds releases share a title) go in log order, reversed when descending.
    indexed = list(enumerate(RELEASES))
    ordered = sorted(indexed, key=lambda p: p[0], reverse=reverse)
    ordered.sort(key=lambda p: key(p[1]), reverse=reverse)
    expected = [r[0] for _, r in ordered]
    assert shown(http.get("/register", params=params)) == expected
    assert csv_ids(http.get("/register.csv", params=params)) == expected


def test_filter_form_keeps_what_was_chosen_and_links_downloads(http):
    params = {"recipient": "academic", "sort": "patients", "order": "asc", "project": "diabetes"}
    doc = parse(http.get("/register", params=params).text)
    form = doc.find(".//form[@action='/register']")
    assert form.get("method") == "get"
    chosen = {
        s.get("name"): o.get("value")
        for s in form.iter("select")
        for o in s.iter("option")
        if o.get("selected") is not None
    }
    assert chosen == {
        "organisation": "",
        "purpose": "",
        "recipient": "academic",
        "sort": "patients",
        "order": "asc",
    }
    assert form.find(".//input[@name='project']").get("value") == "diabetes"
    links = {a.get("href") for a in doc.iter("a")}
    assert "/register.csv?recipient=academic&project=diabetes&sort=patients&order=asc" in links
    assert "/register.json?recipient=academic&project=diabetes&sort=patients&order=asc" in links


def test_every_row_links_to_a_proof_that_verifies(http, seeded):
    doc = parse(http.get("/register").text)
    checkpoint = http.get("/api/ledger/checkpoint").json()
    root = bytes.fromhex(checkpoint["root"])
    proofs = [a.get("href") for a in doc.iter("a") if "/proof/inclusion" in (a.get("href") or "")]
    entries = [
        a.get("href") for a in doc.iter("a") if "/api/ledger/entries" in (a.get("href") or "")
    ]
    assert len(proofs) == len(entries) == len(RELEASES)
    for proof_href, entry_href in zip(proofs, entries, strict=True):
        proof = http.get(proof_href).json()
        entry = http.get(entry_href).json()["entries"][0]
        leaf = base64.b64decode(entry["leaf_input"])
        assert json.loads(leaf)["kind"] == "release"
        assert proof["index"] == entry["index"]
        merkle.verify_inclusion(
            proof["index"],
            proof["size"],
            merkle.leaf_hash(leaf),
            [bytes.fromhex(h) for h in proof["audit_path"]],
            root,
        )
    assert "confide ledger verify --url" in doc.find(".//pre").findtext(".//code")


def test_json_download_carries_the_signed_checkpoint(http):
    doc = http.get("/register.json").json()
    assert doc["checkpoint"]["size"] == http.get("/api/ledger/checkpoint").json()["size"]
    assert doc["checkpoint"]["note"].startswith(doc["checkpoint"]["origin"])
    download = http.get("/register.csv")
    assert "attachment" in download.headers["content-disposition"]


def test_pages_of_rows(http, monkeypatch):
    monkeypatch.setattr(register_page, "PAGE_SIZE", 2)
    order = [r[0] for r in sorted(RELEASES, key=lambda r: r[5], reverse=True)]
    first = http.get("/register")
    assert shown(first) == order[:2] and "Showing 1 to 2 of 5 releases" in first.text
    assert 'href="/register?page=2"' in first.text
    assert shown(http.get("/register", params={"page": 3})) == order[4:]
    assert shown(http.get("/register", params={"page": 99})) == order[4:]  # past the end: last
    assert csv_ids(http.get("/register.csv", params={"page": 2})) == order  # downloads: all


HOSTILE = [
    ({"page": "abc"}, "page number must be a whole number"),
    ({"page": "-1"}, "page number must be a whole number"),
    ({"page": "1e9"}, "page number must be a whole number"),
    ({"sort": SCRIPT}, "Choose how to sort from the list"),
    ({"order": "sideways"}, "Choose an order from the list"),
    ({"purpose": SCRIPT}, "Choose a purpose from the list"),
    ({"recipient": "insurer"}, "Choose a kind of recipient from the list"),
    ({"project": SCRIPT}, "using letters, numbers, spaces and simple punctuation"),
    ({"organisation": '"><img src=x onerror=alert(1)>'}, "using letters, numbers"),
    ({"project": "x" * 101}, "project you searched for is too long"),
    ({"project": "a" * 2000}, "web address is too long"),
    ([("purpose", "research"), ("purpose", "planning")], "only once"),
    ({"project": "\x00\x1b"}, "using letters, numbers"),
]


@pytest.mark.parametrize(("params", "message"), HOSTILE)
@pytest.mark.parametrize("path", ["/register", "/register.csv", "/register.json"])
def test_hostile_addresses_get_a_clear_page_and_change_nothing(http, seeded, path, params, message):
    before = seeded.ledger.head()
    response = http.get(path, params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert "Nothing was changed" in response.text
    values = [v for _, v in (params.items() if isinstance(params, dict) else params)]
    for value in values:
        if len(value) >= 5 and not value.isalpha():  # (short or plain words may be anywhere)
            assert value not in response.text and value[:20] not in response.text
    assert "alert(1)" not in response.text and "onerror" not in response.text
    assert 'href="/register"' in response.text  # what to do next
    assert seeded.ledger.head() == before


def test_empty_register_says_so_and_new_releases_show_at_once(tmp_path):
    home = build_home(tmp_path / "empty", people=3)
    try:
        with TestClient(home.app(), base_url="https://testserver") as client:
            page = client.get("/register")
            assert shown(page) == []
            assert "No data has been released yet" in page.text
            assert client.get("/register.csv").text.count("\n") == 1  # the header only
            folder = releases_folder(home.home)
            publish_release(home.ledger, folder, "R-NEW-1", contributors=["a"])
            assert shown(client.get("/register")) == ["R-NEW-1"]
            apply_project(home.ledger, "P-0001", "A title logged after its release")
            publish_release(home.ledger, folder, "R-NEW-2", contributors=["b"], date="2025-03-02")
            page = client.get("/register")
            assert shown(page) == ["R-NEW-2", "R-NEW-1"]
            assert page.text.count("A title logged after its release") == 2
    finally:
        home.close()
