"""The patient's journeys over HTTP: self, proxy for a young child, sign-out, lock-outs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from web_seed import build_home, csrf_of, sign_in

from confide.choices.model import Actor, Channel


@pytest.fixture
def seeded(tmp_path):
    home = build_home(tmp_path / "home", people=6)
    yield home
    home.close()


@pytest.fixture
def http(seeded):
    with TestClient(seeded.app(demo=True), base_url="https://testserver") as client:
        yield client


def test_commercial_opt_out_in_six_screens(http, seeded):
    person = seeded.adult
    screens = [http.get("/")]  # 1 start
    screens.append(http.get("/identity"))  # 2 identity
    token = csrf_of(screens[-1].text)
    screens.append(http.post("/identity", data={"csrf_token": token, **person.form()}))  # 3 code
    assert "Enter your code" in screens[-1].text and "/demo/outbox" in screens[-1].text
    screens.append(http.post("/code", data={"csrf_token": token, "code": seeded.latest_code()}))
    assert "Your choices" in screens[-1].text  # 4 your choices
    assert csrf_of(screens[-1].text) != token  # rotated at sign-in
    token = csrf_of(screens[-1].text)
    screens.append(http.get("/change"))  # 5 change
    assert "Do not let commercial companies use my data" in screens[-1].text
    done = http.post("/change", data={"csrf_token": token, "choices": "no_commercial"})
    screens.append(done)  # 6 confirmation
    assert len(screens) <= 6 and all(s.status_code == 200 for s in screens)
    assert "Choices saved" in done.text and "Not used by commercial companies" in done.text
    assert seeded.registry.current(person.nhs_number).no_commercial  # effective at once
    event = seeded.registry.history(person.nhs_number)[-1]
    assert event.channel == Channel.ONLINE and event.actor == Actor.SELF
    notice = seeded.messages()[-1]
    assert notice["kind"] == "choices_changed" and "commercial" in notice["text"]
    assert notice["to"] == "p***@example.org"
    mine = http.get("/your-choices").text
    assert "Not used by commercial companies" in mine


def test_an_online_withdrawal_says_what_another_channel_keeps_in_place(http, seeded):
    number = seeded.adult.nhs_number
    seeded.registry.set(number, {"no_research": True}, Channel.LETTER)
    seeded.registry.apply_gp_code(number, True, None)
    token = sign_in(http, seeded, seeded.adult)
    page = http.post("/change", data={"csrf_token": token, "choices": "no_planning"})
    assert page.status_code == 200 and "Still in place" in page.text
    assert "because of a letter" in page.text
    assert "your GP practice&#39;s record" in page.text or "your GP practice's record" in page.text
    now = seeded.registry.current(number)
    assert now.no_research and now.share_nothing and now.no_planning
    assert number not in page.text


def test_change_can_turn_choices_off_again(http, seeded):
    token = sign_in(http, seeded, seeded.adult)
    http.post("/change", data={"csrf_token": token, "choices": ["no_research", "no_planning"]})
    assert seeded.registry.current(seeded.adult.nhs_number).no_research
    page = http.post("/change", data={"csrf_token": token, "choices": "no_planning"})
    assert "May be used for approved research" in page.text
    now = seeded.registry.current(seeded.adult.nhs_number)
    assert not now.no_research and now.no_planning
    same = http.post("/change", data={"csrf_token": token, "choices": "no_planning"})
    assert same.status_code == 422 and "You have not changed anything" in same.text


def test_share_nothing_explains_erasure(http, seeded):
    token = sign_in(http, seeded, seeded.adult)
    page = http.post("/change", data={"csrf_token": token, "choices": "share_nothing"})
    assert "being deleted from the central store" in page.text


def test_parent_acts_for_child_under_13(http, seeded):
    child = seeded.young_child
    token = sign_in(http, seeded, child, proxy=True)
    page = http.get("/your-choices")
    assert "Your child&#39;s choices" in page.text or "Your child's choices" in page.text
    http.post("/change", data={"csrf_token": token, "choices": "no_research"})
    event = seeded.registry.history(child.nhs_number)[-1]
    assert event.actor == Actor.PARENT and event.channel == Channel.PROXY
    assert event.proxy == {"kind": "parent", "basis": "child under 13"}


def test_parent_cannot_act_for_child_of_13_or_more(http, seeded):
    child = seeded.older_child
    token = sign_in(http, seeded, child, proxy=True)
    refused = http.post("/change", data={"csrf_token": token, "choices": "no_research"})
    assert refused.status_code == 422 and "only for a child under 13" in refused.text
    assert seeded.registry.history(child.nhs_number) == []


def test_sign_out_ends_the_session(http, seeded):
    token = sign_in(http, seeded, seeded.adult)
    assert http.post("/sign-out", data={"csrf_token": token}).status_code == 200
    assert http.get("/your-choices").status_code == 401


def test_details_that_do_not_match_look_the_same(http, seeded):
    token = csrf_of(http.get("/identity").text)
    wrong = {**seeded.adult.form(), "postcode": "NE1 4ST"}
    page = http.post("/identity", data={"csrf_token": token, **wrong})
    assert page.status_code == 200 and "Enter your code" in page.text
    assert seeded.messages() == []  # nothing sent
    bad = http.post("/code", data={"csrf_token": token, "code": "123456"})
    assert bad.status_code == 422 and "That code is not right" in bad.text


def test_identity_check_is_rate_limited(http, seeded):
    token = csrf_of(http.get("/identity").text)
    form = seeded.adult.form()
    for _ in range(5):
        assert http.post("/identity", data={"csrf_token": token, **form}).status_code == 200
    locked = http.post("/identity", data={"csrf_token": token, **form})
    assert locked.status_code == 429 and "Too many attempts" in locked.text
