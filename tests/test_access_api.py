"""The /api/access HTTP API, in process through the ASGI app.

Every endpoint is called with the wrong organisation, the wrong role, no token and a bad
token; the endpoint list used here is checked against the router so none can be forgotten.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from test_access_service import PEOPLE, START, World, application, build_world, email_of

from confide.access import credentials
from confide.access.api import make_router

TOKEN = "/api/access/token"
PROJECTS = "/api/access/projects"
REASON = {"reason": "Recorded for the test."}


def app_for(world: World) -> FastAPI:
    app = FastAPI()
    app.include_router(make_router(world.access))
    return app


@dataclass
class Served:
    world: World
    client: TestClient
    tokens: dict[str, str]
    secrets: dict[str, tuple[str, str]]

    def as_(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[key]}"}


@pytest.fixture(autouse=True, scope="module")
def _cheap_hashes() -> Iterator[None]:
    """These tests make many clients; the production scrypt cost is tested elsewhere."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(credentials, "SCRYPT_N", 2**10)
        yield


def serve(world: World) -> Served:
    tokens, secrets = {}, {}
    for key, memberships in PEOPLE.items():
        org = memberships[0][0]
        client_id, secret = world.access.create_client(org, email_of(key))
        secrets[key] = (client_id, secret)
        tokens[key] = world.access.issue_token(client_id, secret).access_token
    # someone whose only role was taken away after their token was issued
    world.access.add_person("uni", "Former Member", email_of("exmember"), ["applicant"])
    client_id, secret = world.access.create_client("uni", email_of("exmember"))
    tokens["exmember"] = world.access.issue_token(client_id, secret).access_token
    world.access.revoke_role("uni", email_of("exmember"), "applicant")
    return Served(world, TestClient(app_for(world)), tokens, secrets)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One world with projects in every state, shared by the refusal tests (which must not
    change anything, and are checked not to)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CONFIDE_DATABASE_URL", raising=False)
        world = build_world(tmp_path_factory.mktemp("access-api"))
    s = serve(world)
    a, alice = world.access, world.who("alice")
    for slug in ("uni-draft", "uni-submitted", "uni-approved", "uni-suspended"):
        a.apply(alice, application(slug=slug))
    for slug in ("uni-submitted", "uni-approved", "uni-suspended"):
        a.submit(alice, slug)
    for slug in ("uni-approved", "uni-suspended"):
        a.approve(world.who("approver"), slug, "Yes.")
    a.suspend(world.who("admin"), "uni-suspended", "Paused.")
    yield s
    world.access.close()


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Served]:
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
    world = build_world(tmp_path)
    yield serve(world)
    world.access.close()


@dataclass(frozen=True)
class Case:
    """One endpoint: the project it acts on, and who is in the wrong organisation or role.

    ``wrong_org`` callers must get 404 (or, for listing, not see the project); ``wrong_role``
    callers belong to or may see the project's organisation but lack the role: 403.
    """

    method: str
    path: str
    target: str | None
    body: dict[str, Any] | None
    wrong_org: tuple[str, ...]
    wrong_role: tuple[str, ...]


APPLY_BODY = {
    "title": "HTTP application",
    "purpose": "research",
    "legal_basis": "public_task",
    "datasets": {"events": ["code", "date"]},
    "window_start": "2015-01-01",
    "window_end": "2020-12-31",
    "expires_on": (START.date() + timedelta(days=90)).isoformat(),
}

CASES = [
    Case("POST", TOKEN, None, None, ("bob",), ("exmember",)),
    Case("GET", PROJECTS, None, None, ("bob", "carol", "dac_applicant"), ("exmember",)),
    Case("POST", PROJECTS, None, APPLY_BODY, ("bob",), ("uni_checker", "exmember", "approver")),
    Case("GET", PROJECTS + "/{slug}", "uni-draft", None, ("bob", "approver"), ("exmember",)),
    Case("POST", PROJECTS + "/{slug}/submit", "uni-draft", None, ("bob",), ("uni_checker",)),
    Case(
        "POST",
        PROJECTS + "/{slug}/approve",
        "uni-submitted",
        REASON,
        ("bob", "carol"),
        ("checker", "admin", "alice", "dual2"),
    ),
    Case(
        "POST",
        PROJECTS + "/{slug}/reject",
        "uni-submitted",
        REASON,
        ("bob", "carol"),
        ("checker", "admin", "alice", "dual2"),
    ),
    Case(
        "POST",
        PROJECTS + "/{slug}/suspend",
        "uni-approved",
        REASON,
        ("bob",),
        ("approver", "checker", "alice"),
    ),
    Case(
        "POST",
        PROJECTS + "/{slug}/reinstate",
        "uni-suspended",
        REASON,
        ("bob",),
        ("approver", "checker", "alice"),
    ),
]
AUTHENTICATED = [c for c in CASES if c.path != TOKEN]


def _call(s: Served, case: Case, headers: dict[str, str], body: Any = None) -> Any:
    path = case.path.format(slug=case.target) if case.target else case.path
    return s.client.request(case.method, path, headers=headers, json=body or case.body)


def _snapshot(s: Served) -> list[tuple[str, str]]:
    alice = s.world.who("alice")
    return [(p.slug, p.status.value) for p in s.world.access.projects(alice)]


def test_the_cases_cover_every_route_of_the_router(served: Served) -> None:
    routes = {
        (method, route.path)
        for route in make_router(served.world.access).routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes == {(c.method, c.path) for c in CASES}


@pytest.mark.parametrize("case", AUTHENTICATED, ids=lambda c: f"{c.method} {c.path}")
def test_wrong_organisation_is_refused_as_if_nothing_were_there(served: Served, case: Case) -> None:
    before = _snapshot(served)
    for key in case.wrong_org:
        if case.method == "GET" and case.target is None:
            response = _call(served, case, served.as_(key))
            assert response.status_code == 200
            orgs = {p["organisation"] for p in response.json()["projects"]}
            assert "uni" not in orgs
            continue
        if case.target is None:  # applying: the organisation is always the caller's own
            body = {**APPLY_BODY, "organisation": "uni"}
            response = _call(served, case, served.as_(key), body)
            assert response.status_code == 422
            continue
        response = _call(served, case, served.as_(key))
        assert response.status_code == 404, (key, response.json())
        missing = {**case.__dict__, "target": "no-such-project"}
        nothing = _call(served, Case(**missing), served.as_(key))
        assert response.json() == nothing.json()
    assert _snapshot(served) == before


@pytest.mark.parametrize("case", AUTHENTICATED, ids=lambda c: f"{c.method} {c.path}")
def test_wrong_role_is_forbidden(served: Served, case: Case) -> None:
    before = _snapshot(served)
    for key in case.wrong_role:
        response = _call(served, case, served.as_(key))
        assert response.status_code == 403, (key, response.json())
        assert response.json()["detail"]["error"]
    assert _snapshot(served) == before


@pytest.mark.parametrize("case", AUTHENTICATED, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic abc", "Bearer "])
def test_every_endpoint_needs_a_valid_token(served: Served, case: Case, header: str | None) -> None:
    response = _call(served, case, {"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"]["error"]


def test_token_for_wrong_organisation_or_role_credentials_is_refused(served: Served) -> None:
    """The token endpoint's "wrong organisation and role": another client's secret, and a
    member whose client was revoked. Same answer as an unknown client."""
    alice_id, _ = served.secrets["alice"]
    _, bob_secret = served.secrets["bob"]
    answers = []
    for cid, secret in [(alice_id, bob_secret), ("cfd-unknown", bob_secret)]:
        response = served.client.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        )
        assert response.status_code == 401
        answers.append(response.json())
    assert (
        answers[0]
        == answers[1]
        == {
            "error": "invalid_client",
            "error_description": "The client credentials were not accepted.",
        }
    )


def test_tokens_are_issued_for_client_credentials(served: Served) -> None:
    cid, secret = served.secrets["carol"]
    form = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
    response = served.client.post(TOKEN, data=form)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    listing = served.client.get(
        PROJECTS, headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert listing.status_code == 200
    basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    response = served.client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    bad = served.client.post(TOKEN, data={**form, "grant_type": "password"})
    assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"
    missing = served.client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_the_openapi_documents_client_credentials_auth(served: Served) -> None:
    spec = served.client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["client_credentials"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == TOKEN
    for case in AUTHENTICATED:
        operation = spec["paths"][case.path][case.method.lower()]
        assert operation["security"] == [{"client_credentials": []}]


def test_a_project_goes_through_its_life_over_http(fresh: Served) -> None:
    c = fresh.client
    created = c.post(PROJECTS, json={**APPLY_BODY, "slug": "over-http"}, headers=fresh.as_("alice"))
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "draft"
    assert created.json()["organisation"] == "uni"
    step = c.post(f"{PROJECTS}/over-http/submit", headers=fresh.as_("alice2"))
    assert step.json()["status"] == "submitted"
    own = c.post(f"{PROJECTS}/over-http/approve", json=REASON, headers=fresh.as_("dual2"))
    assert own.status_code == 403
    ok = c.post(f"{PROJECTS}/over-http/approve", json=REASON, headers=fresh.as_("approver"))
    assert ok.json()["status"] == "approved"
    again = c.post(f"{PROJECTS}/over-http/approve", json=REASON, headers=fresh.as_("approver2"))
    assert again.status_code == 409
    shown = c.get(f"{PROJECTS}/over-http", headers=fresh.as_("alice")).json()
    assert [h["kind"] for h in shown["history"]] == [
        "project_applied",
        "project_submitted",
        "project_approved",
    ]
    assert shown["history"][-1]["reason"] == REASON["reason"]
    assert "actor_id" not in str(shown)
    suspended = c.post(f"{PROJECTS}/over-http/suspend", json=REASON, headers=fresh.as_("admin"))
    assert suspended.json()["status"] == "suspended"
    back = c.post(f"{PROJECTS}/over-http/reinstate", json=REASON, headers=fresh.as_("admin"))
    assert back.json()["status"] == "approved"
    rejected = c.post(f"{PROJECTS}/over-http/reject", json=REASON, headers=fresh.as_("approver2"))
    assert rejected.status_code == 409
    fresh.world.clock.advance(hours=1)
    expired = c.get(PROJECTS, headers=fresh.as_("alice"))
    assert expired.status_code == 401


@pytest.mark.parametrize("purpose", ["insurance", "marketing"])
def test_insurance_and_marketing_are_refused_over_http(fresh: Served, purpose: str) -> None:
    response = fresh.client.post(
        PROJECTS, json={**APPLY_BODY, "purpose": purpose}, headers=fresh.as_("carol")
    )
    assert response.status_code == 403
    assert "never supplies data" in response.json()["detail"]["error"]


def test_bad_applications_get_clear_errors(fresh: Served) -> None:
    bad_column = {**APPLY_BODY, "datasets": {"events": ["nhs_number"]}}
    response = fresh.client.post(PROJECTS, json=bad_column, headers=fresh.as_("alice"))
    assert response.status_code == 422
    assert "no column" in response.json()["detail"]["error"]
    assert response.json()["detail"]["hint"].startswith("Columns of events")
    unknown = fresh.client.post(
        PROJECTS, json={**APPLY_BODY, "purpose": "selling"}, headers=fresh.as_("alice")
    )
    assert unknown.status_code == 422
