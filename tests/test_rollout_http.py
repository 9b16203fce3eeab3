"""The roll-out over HTTP: the public figures for anyone; the national and area switches only
for the operator role; a pause through the API stops extraction, ingest and releases (the
TRE's own query API included) and resuming restores them."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rollout_world import AREA, ODS, PILOT_START, nhs_numbers, write_export
from tre_world import BY_SEX, TreWorld, build

from confide.access.seed import PEOPLE
from confide.practice import keys
from confide.practice.agent import extract
from confide.rollout.gate import RolloutStopped
from confide.rollout.model import Channel
from confide.rollout.notices import NoticeRegister
from confide.rollout.service import Rollout
from confide.web.app import create_app


@pytest.fixture
def tre(tmp_path: Path) -> TreWorld:
    made = build(tmp_path / "home", practices=1, patients=40)
    made.world.hub.enrol(ODS, "practice", keys.verify_key(made.home, ODS))
    numbers = nhs_numbers(6)
    write_export(tmp_path / "export", numbers)
    with NoticeRegister(made.home) as register:
        register.sent(ODS, numbers, Channel.LETTER, date.today() - timedelta(weeks=10))
    yield made
    made.close()


@pytest.fixture
def client(tre: TreWorld) -> TestClient:
    app = create_app(
        tre.home,
        registry=tre.registry,
        ledger=tre.ledger,
        access=tre.access,
        queries=tre.service,
        review=tre.review,
        secure_cookies=False,
    )
    return TestClient(app)


def _auth(tre: TreWorld, key: str) -> dict[str, str]:
    org, _, email, _ = PEOPLE[key]
    client_id, secret = tre.access.create_client(org, email)
    token = tre.access.issue_token(client_id, secret).access_token
    return {"Authorization": f"Bearer {token}"}


def test_only_operators_can_switch_and_everyone_sees_the_figures(client, tre) -> None:
    reason = {"reason": "Consultation"}
    assert client.post("/api/rollout/pause", json=reason).status_code == 401
    for key in ("researcher", "approver", "administrator", "output_checker_1"):
        refused = client.post("/api/rollout/pause", json=reason, headers=_auth(tre, key))
        assert refused.status_code == 403, key
    assert client.get("/api/rollout").json()["national"]["paused"] is False
    empty = client.post("/api/rollout/pause", json={"reason": ""}, headers=_auth(tre, "operator"))
    assert empty.status_code == 422
    assert client.get("/api/rollout").json()["national"]["paused"] is False


def test_an_http_pause_stops_all_three_and_resuming_restores_them(client, tre, tmp_path):
    export = tmp_path / "export"

    def make():
        return extract(export, tre.home, tre.world.pseudonymiser.public_key(), source=ODS)

    def query():
        body = {"project": "demo-research", "sql": BY_SEX}
        reply = client.post("/api/tre/queries", json=body, headers=_auth(tre, "researcher"))
        assert reply.status_code == 200, reply.text
        return reply.json()

    waiting = make().path
    operator = _auth(tre, "operator")
    paused = client.post("/api/rollout/pause", json={"reason": "Incident"}, headers=operator)
    assert paused.status_code == 200 and paused.json()["national"]["reason"] == "Incident"
    with pytest.raises(RolloutStopped):
        make()
    with pytest.raises(RolloutStopped):
        tre.world.hub.ingest(waiting)
    refused = query()
    assert refused["status"] == "refused" and "paused" in refused["reason"]
    assert refused["result"] is None

    resumed = client.post("/api/rollout/resume", json={"reason": "Fixed"}, headers=operator)
    assert resumed.json()["national"]["paused"] is False
    assert tre.world.hub.ingest(waiting).status == "ingested"
    assert make().counts["patients"] == 6
    assert query()["status"] == "released"


def test_an_area_pause_over_http_stops_releases_of_its_practices(client, tre) -> None:
    rollout = Rollout.open(tre.home, tre.ledger)
    rollout.set_area(AREA, name="Pilot", wave=0, start_date=PILOT_START, role="operator")
    rollout.set_practice("B86001", "joined", role="practice", area=AREA)
    rollout.close()
    operator = _auth(tre, "operator")
    body = {"project": "demo-research", "sql": BY_SEX}
    researcher = _auth(tre, "researcher")
    missing = client.post(
        "/api/rollout/areas/E99999999/pause", json={"reason": "x"}, headers=operator
    )
    assert missing.status_code == 404
    client.post(f"/api/rollout/areas/{AREA}/pause", json={"reason": "Local"}, headers=operator)
    assert client.post("/api/tre/queries", json=body, headers=researcher).json()["status"] == (
        "refused"
    )
    client.post(f"/api/rollout/areas/{AREA}/resume", json={"reason": "Done"}, headers=operator)
    assert client.post("/api/tre/queries", json=body, headers=researcher).json()["status"] == (
        "released"
    )


def test_the_public_page_shows_switches_and_counts_only(client, tre) -> None:
    rollout = Rollout.open(tre.home, tre.ledger)
    rollout.set_area(AREA, name="Pilot area", wave=0, start_date=PILOT_START, role="operator")
    rollout.set_practice(ODS, "joined", role="practice", area=AREA)
    rollout.set_practice("B86002", "declined", role="practice")
    rollout.pause("Public consultation", role="operator")
    rollout.close()
    page = client.get("/rollout")
    assert page.status_code == 200
    text = page.text
    assert "Confide is paused" in text and "Public consultation" in text
    assert "Pilot area" in text and "Declined" in text
    assert not any(n in text for n in nhs_numbers(6))
