"""The choices HTTP API, mounted in a small app the way the web app will mount it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from confide.choices.api import make_router
from confide.choices.identity import IdentityConfig, IdentityService
from confide.choices.model import Choice
from confide.choices.registry import ChoicesRegistry
from confide.common.home import Home

KNOWN = "9434765919"


@pytest.fixture
def client(opstore, tmp_path: Path):
    home = Home.at(tmp_path / "home")
    registry = ChoicesRegistry.open(home)
    registry.enrol_demographics([(KNOWN, date(1980, 5, 17), "LS1 4AP")])
    identity = IdentityService.open(registry, home.root, config=IdentityConfig(min_seconds=0))
    app = FastAPI()
    told = []
    notify = lambda number, event: told.append((number, event))  # noqa: E731
    router = make_router(registry, identity, notify=notify, gp_token="gp-secret")
    app.include_router(router, prefix="/choices")
    with TestClient(app) as http:
        yield http, home.root / "outbox", registry, told
    registry.close()


def _sign_in(http: TestClient, outbox: Path) -> dict[str, str]:
    started = http.post(
        "/choices/identity/start",
        json={"nhs_number": KNOWN, "birth_date": "1980-05-17", "postcode": "ls14ap"},
    )
    assert started.status_code == 202
    code = json.loads(next(outbox.glob("*.json")).read_text())["code"]
    verified = http.post(
        "/choices/identity/verify",
        json={"challenge_id": started.json()["challenge_id"], "code": code},
    )
    assert verified.status_code == 200
    return {"Authorization": f"Bearer {verified.json()['session_token']}"}


def test_patient_journey(client) -> None:
    http, outbox, registry, told = client
    auth = _sign_in(http, outbox)
    assert http.get("/choices/me", headers=auth).json()["no_research"] is False
    changed = http.put("/choices/me", headers=auth, json={"changes": {"no_research": True}})
    assert changed.status_code == 200 and changed.json()["no_research"] is True
    assert registry.current(KNOWN).no_research  # effective at once
    assert [(n, e.changes) for n, e in told] == [(KNOWN, {Choice.NO_RESEARCH: True})]  # told
    history = http.get("/choices/me/history", headers=auth).json()
    assert history[0]["channel"] == "online" and history[0]["changes"] == {"no_research": True}
    bad = http.put("/choices/me", headers=auth, json={"changes": {"no_spam": True}})
    assert bad.status_code == 422 and "Unknown choice" in bad.json()["detail"]["error"]


def test_unauthenticated_and_locked(client) -> None:
    http, _outbox, _registry, _told = client
    assert http.get("/choices/me").status_code == 401
    assert http.get("/choices/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    for day in range(1, 6):
        body = {"nhs_number": KNOWN, "birth_date": f"1990-01-0{day}", "postcode": "LS1 4AP"}
        assert http.post("/choices/identity/start", json=body).status_code == 202
    locked = http.post("/choices/identity/start", json=body)
    assert locked.status_code == 429 and "Too many attempts" in locked.json()["detail"]["error"]


def test_gp_endpoint(client) -> None:
    http, _outbox, registry, _told = client
    body = {"nhs_number": KNOWN, "dissent": True, "recorded_on": "2026-02-01"}
    assert http.post("/choices/gp/type1", json=body).status_code == 401
    headers = {"Authorization": "Bearer gp-secret"}
    first = http.post("/choices/gp/type1", json=body, headers=headers)
    assert first.status_code == 200 and first.json()["recorded"] is True
    assert first.json()["event"]["channel"] == "gp_code"
    again = http.post("/choices/gp/type1", json=body, headers=headers)
    assert again.json() == {"recorded": False, "event": None}
    assert registry.current(KNOWN).share_nothing


def test_openapi_documents_every_route(client) -> None:
    http, _outbox, _registry, _told = client
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/choices/identity/start",
        "/choices/identity/verify",
        "/choices/me",
        "/choices/me/history",
        "/choices/gp/type1",
    ):
        assert path in paths
        for operation in paths[path].values():
            assert operation["summary"]
            assert "200" in operation["responses"] or "202" in operation["responses"]
    assert "ChoicesOut" in spec["components"]["schemas"]
