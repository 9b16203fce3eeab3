"""'How your data has been used' over real parties: only after the identity check, the releases
that used the person and those their choice kept them out of (with why and a proof that
verifies), their own changes, and never their NHS number anywhere but where they typed it."""

from __future__ import annotations

import base64
import logging

import html5lib
import pytest
from fastapi.testclient import TestClient
from web_seed import sign_in
from web_world import build_world

from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.usage.proofs import InclusionProof
from confide.web.app import create_app
from confide.web.cli import installation_usage

PAGE = "/your-data-use"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = build_world(tmp_path_factory.mktemp("usage-web") / "home", patients=100)
    yield built
    built.close()


@pytest.fixture(scope="module")
def story(world):
    """A research release, a commercial release, person 0 opts out of commercial use on the
    web, then a second commercial release."""
    research = world.query("demo-research")
    before = world.query("demo-commercial")
    person = world.people[0]
    with TestClient(world.app(), base_url="https://testserver") as http:
        token = sign_in(http, world, person)
        saved = http.post("/change", data={"csrf_token": token, "choices": "no_commercial"})
        assert saved.status_code == 200 and "Choices saved" in saved.text
    after = world.query("demo-commercial")
    for outcome in (research, before, after):
        assert outcome.status == "released", outcome.reason
    return {"research": research, "before": before, "after": after, "person": person}


class Counting:
    """The real usage source, counting the people it was asked about."""

    def __init__(self, world) -> None:
        self.source = installation_usage(world.parties)
        self.calls = 0

    def __call__(self, nhs_number: str):
        self.calls += 1
        return self.source(nhs_number)


def parse(text: str):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def cards(html: str, heading: str) -> str:
    """The part of the page under the ``<h2>`` starting with ``heading``."""
    start = html.index(f"<h2>{heading}")
    return html[start : html.index("<h2>", start + 4)]


def test_the_page_needs_the_identity_check_and_looks_nobody_up_without_it(world):
    counting = Counting(world)
    with TestClient(world.app(usage=counting), base_url="https://testserver") as http:
        for path in (PAGE, PAGE + ".json"):
            page = http.get(path)
            assert page.status_code == 401 and "Your session has ended" in page.text
        http.cookies.set("confide_session", "forged.value.here")
        assert http.get(PAGE).status_code == 401
    assert counting.calls == 0


def test_without_a_usage_source_the_page_says_it_is_not_available(world):
    app = create_app(
        world.home,
        registry=world.registry,
        identity=world.identity,
        ledger=world.parties.ledger,
        access=world.parties.access,
    )
    with TestClient(app, base_url="https://testserver") as http:
        sign_in(http, world, world.people[5])
        page = http.get(PAGE)
        assert page.status_code == 200
        assert "The usage report is not available here" in page.text
        assert 'href="/register"' in page.text
        assert "not available" in http.get(PAGE + ".json").text


def test_opted_out_person_sees_used_and_left_out_releases(world, story, caplog):
    person = story["person"]
    assert world.in_release(story["before"].release_id, person, "contributors")
    assert world.in_release(story["after"].release_id, person, "excluded")
    assert not world.in_release(story["after"].release_id, person, "contributors")
    caplog.set_level(logging.DEBUG)
    with TestClient(world.app(), base_url="https://testserver") as http:
        sign_in(http, world, person)
        choices = http.get("/your-choices")
        assert f'href="{PAGE}"' in choices.text
        page = http.get(PAGE)
    assert page.status_code == 200
    parse(page.text)
    used = cards(page.text, "Releases that used your data")
    left_out = cards(page.text, "Releases your choices kept your data out of")
    assert story["research"].release_id in used and story["before"].release_id in used
    assert story["after"].release_id in left_out and story["after"].release_id not in used
    assert "Left out because you had chosen: “Do not let commercial companies use my data”" in (
        left_out
    )
    assert "Included: you had not opted out of anything at the time." in used
    assert "Demo: real-world use of a medicine" in left_out
    own = cards(page.text, "Your changes of choice in the log")
    assert "Not used by commercial companies" in own
    assert "We checked 3 releases of data" in page.text
    number = person.nhs_number
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    for text in (page.text, *(r.getMessage() for r in caplog.records)):
        assert number not in text and spaced not in text
    assert all(number not in str(r.url) for r in [page, *page.history])


def test_each_release_proof_verifies_against_the_signed_checkpoint(world, story):
    verifier = world.parties.ledger.verifier
    with TestClient(world.app(), base_url="https://testserver") as http:
        sign_in(http, world, story["person"])
        doc = parse(http.get(PAGE).text)
        report = http.get(PAGE + ".json")
        data = report.json()
        head = cp.verify(data["checkpoint"]["note"], verifier)  # the report's signed checkpoint
        links = [
            a.get("href") for a in doc.iter("a") if "/proof/inclusion" in (a.get("href") or "")
        ]
        assert len(links) == 3  # one per release; none for the person's own entries
        register = {
            r["leaf_hash"]: r["release_id"] for r in http.get("/register.json").json()["releases"]
        }
        proved = set()
        for href in links:
            proof = http.get(href).json()
            leaf_hash = href.split("leaf_hash=")[1].split("&")[0]
            assert proof["size"] == head.size
            merkle.verify_inclusion(
                proof["index"],
                proof["size"],
                bytes.fromhex(leaf_hash),
                [bytes.fromhex(h) for h in proof["audit_path"]],
                head.root,
            )
            proved.add(register[leaf_hash])
    assert proved == {story[k].release_id for k in ("research", "before", "after")}
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert report.headers["cache-control"] == "no-store"
    assert story["person"].nhs_number not in report.text
    items = data["included"] + data["excluded"] + data["own_entries"]
    assert len(items) == 4
    for item in items:
        p = item["proof"]
        InclusionProof(
            p["index"],
            p["size"],
            base64.b64decode(p["leaf_input"]),
            tuple(bytes.fromhex(h) for h in p["audit_path"]),
            p["checkpoint"],
        ).verify(verifier)  # raises if the proof or the checkpoint's signature is wrong


def test_someone_who_never_opted_out_was_used_by_every_release(world, story):
    person = world.people[1]
    with TestClient(world.app(), base_url="https://testserver") as http:
        sign_in(http, world, person)
        page = http.get(PAGE).text
        # The person comes from the session only: a number in the address changes nothing.
        other = story["person"].nhs_number
        assert (
            http.get(PAGE, params={"nhs_number": other}).text.count("Your data was left out") == 0
        )
    used = cards(page, "Releases that used your data")
    for key in ("research", "before", "after"):
        assert story[key].release_id in used
    left_out = cards(page, "Releases your choices kept your data out of")
    assert "No release has left your data out because of your choices." in left_out
    assert "The log has no change of choice for you yet." in page


def test_confirmation_page_links_to_the_report(world):
    with TestClient(world.app(), base_url="https://testserver") as http:
        token = sign_in(http, world, world.people[2])
        done = http.post("/change", data={"csrf_token": token, "choices": "no_planning"})
        assert f'href="{PAGE}"' in done.text
        page = http.get(PAGE).text
    assert "Not used for planning" in cards(page, "Your changes of choice in the log")


JARGON = ("RFC", "Merkle", "leaf hash", "root hash", "tree size", "checkpoint", "hash it")


def test_the_page_speaks_plain_english_outside_the_proofs(world, story):
    """Technical words stay inside the collapsed proofs; the page itself has none."""
    with TestClient(world.app(), base_url="https://testserver") as http:
        sign_in(http, world, story["person"])
        page = http.get(PAGE)
    main = parse(page.text).find(".//main")
    for details in main.iter("details"):
        details.clear()
    text = " ".join(" ".join(main.itertext()).split())
    assert [word for word in JARGON if word.lower() in text.lower()] == []
