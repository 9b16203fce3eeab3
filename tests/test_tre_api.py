"""The TRE HTTP API: every endpoint with the right caller, the wrong organisation and the
wrong role; and the list of endpoints tested equals the router's routes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tre_world import TreWorld, build, hold

from confide.access.api import make_router as access_router
from confide.access.seed import PEOPLE
from confide.tre.api import make_router

BY_SEX = "SELECT p.sex, count(DISTINCT p.patient_id) AS n FROM patients p GROUP BY p.sex"
ENDPOINTS = {
    ("POST", "/api/tre/queries"),
    ("GET", "/api/tre/queries/{query_id}"),
    ("GET", "/api/tre/projects/{slug}/budget"),
    ("GET", "/api/tre/review/queue"),
    ("POST", "/api/tre/review/{query_id}/vote"),
}


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-api"), practices=1, patients=40)
    yield made
    made.close()


@pytest.fixture(scope="module")
def client(tre: TreWorld) -> TestClient:
    app = FastAPI()
    app.include_router(access_router(tre.access))
    app.include_router(make_router(tre.service, tre.review, tre.access))
    return TestClient(app)


@pytest.fixture(scope="module")
def tokens(tre: TreWorld) -> dict[str, dict[str, str]]:
    out = {}
    for key, (org, _, email, _) in PEOPLE.items():
        client_id, secret = tre.access.create_client(org, email)
        token = tre.access.issue_token(client_id, secret).access_token
        out[key] = {"Authorization": f"Bearer {token}"}
    return out


def test_the_endpoint_list_is_the_router(tre: TreWorld) -> None:
    router = make_router(tre.service, tre.review, tre.access)
    routes = {(method, route.path) for route in router.routes for method in route.methods}
    assert routes == ENDPOINTS


def test_queries_budget_and_review_for_the_right_callers(
    client: TestClient, tokens, tre: TreWorld
) -> None:
    researcher, checker = tokens["researcher"], tokens["output_checker_1"]
    body = {"project": "demo-research", "sql": BY_SEX}
    released = client.post("/api/tre/queries", json=body, headers=researcher)
    assert released.status_code == 200 and released.json()["status"] == "released"
    query_id = released.json()["id"]
    shown = client.get(f"/api/tre/queries/{query_id}", headers=researcher).json()
    assert shown["result"] == released.json()["result"]
    everyone = "SELECT count(DISTINCT patient_id) AS n FROM patients"
    commercial = tokens["commercial"]
    dp = client.post(
        "/api/tre/queries",
        json={"project": "demo-commercial", "sql": everyone, "epsilon": 0.5},
        headers=commercial,
    ).json()
    assert dp["status"] == "released" and dp["result"]["intervals"] and dp["mode"] == "dp"
    budget = client.get("/api/tre/projects/demo-commercial/budget", headers=commercial).json()
    assert budget["epsilon_left"] == pytest.approx(2.5)
    for chosen in ({"mode": "rounding"}, {"preset": "ons"}, {"contributions": 5}):
        asked = client.post("/api/tre/queries", json={**body, **chosen}, headers=researcher)
        assert asked.status_code == 422  # nobody but the approver chooses the protection
    definition = {
        "population": "SELECT p.patient_id, p.sex FROM patients p",
        "dimensions": [{"column": "sex", "domain": ["female", "male"]}],
        "measures": [{"kind": "count", "name": "people"}],
    }
    defined = client.post(
        "/api/tre/queries",
        json={"project": "demo-research", "definition": definition},
        headers=researcher,
    ).json()
    assert defined["status"] == "released", defined["reason"]
    assert [r["sex"] for r in defined["result"]["rows"]] == ["female", "male", "other"]
    both = client.post(
        "/api/tre/queries", json={**body, "definition": definition}, headers=researcher
    )
    assert both.status_code == 422
    held_outcome = hold(tre.service, tre.registry, tre.principal("researcher"),
                        "demo-research", tre.numbers[1])  # fmt: skip
    held = client.get(f"/api/tre/queries/{held_outcome.id}", headers=researcher).json()
    assert held["status"] == "held_for_review" and held["result"] is None
    queue = client.get("/api/tre/review/queue", headers=checker).json()["items"]
    assert held["id"] in [item["id"] for item in queue]
    vote = client.post(
        f"/api/tre/review/{held['id']}/vote",
        json={"approve": False, "reason": "One person's value."},
        headers=checker,
    )
    assert vote.status_code == 200 and vote.json()["status"] == "refused"
    refused = client.post(
        "/api/tre/queries", json={**body, "sql": "PRAGMA version"}, headers=researcher
    ).json()
    assert refused["status"] == "refused" and "PRAGMA" in refused["reason"].upper()


def _calls(query_id: str, slug: str = "demo-research") -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", "/api/tre/queries", {"project": "demo-research", "sql": BY_SEX}),
        ("GET", f"/api/tre/queries/{query_id}", None),
        ("GET", f"/api/tre/projects/{slug}/budget", None),
        ("GET", "/api/tre/review/queue", None),
        ("POST", f"/api/tre/review/{query_id}/vote", {"approve": True, "reason": "ok"}),
    ]


@pytest.mark.parametrize("who", ["planner", "commercial", "output_checker_2", "approver"])
def test_every_endpoint_refuses_the_wrong_organisation_or_role(
    client: TestClient, tokens, tre: TreWorld, who: str
) -> None:
    held = hold(
        tre.service, tre.registry, tre.principal("researcher"), "demo-research", tre.numbers[2]
    ).id
    assert {(m, p) for m, p, _ in _calls("{query_id}", "{slug}")} == ENDPOINTS
    for method, path, body in _calls(held):
        answer = client.request(method, path, json=body, headers=tokens[who])
        checker = who.startswith("output_checker")
        if checker and "/review/" in path:
            assert answer.status_code == 200, (who, path)  # checkers of another org may review
            continue
        assert answer.status_code in (403, 404), (who, method, path, answer.status_code)
        assert "birth_year" not in answer.text


def test_every_endpoint_needs_a_token(client: TestClient) -> None:
    for method, path, body in _calls("0" * 32):
        assert client.request(method, path, json=body).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    for method, path, body in _calls("0" * 32):
        assert client.request(method, path, json=body, headers=bad).status_code == 401
