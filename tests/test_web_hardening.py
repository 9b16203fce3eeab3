"""The web app's hardening, route by route: body limits, trusted proxies, no caching of
private answers, redirects that never trust Host, API validation that never echoes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from web_console_world import build_console_world, email_of, serve, sign_in
from web_seed import csrf_of

from confide.web.hardening import DEFAULT_BODY_LIMIT, TrustedProxies, local_location

KNOWN = "9434765919"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    made = build_console_world(tmp_path_factory.mktemp("hardening") / "home", patients=20)
    yield made
    made.close()


@pytest.fixture(scope="module")
def app(world):
    return world.app()


def client(app, **options) -> TestClient:
    return TestClient(app, base_url="https://testserver", **options)


def _body_routes(app) -> list[tuple[str, str]]:
    """Every route that takes a body: the API's from its OpenAPI schema, the pages' from
    their routers."""
    from confide.web.pages import (
        console_approvals,
        console_projects,
        console_queries,
        console_reviews,
        letter,
        patient,
        staff,
    )

    found = [
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in ("post", "put", "patch")
    ]
    for module in (patient, letter, staff, console_projects, console_approvals):
        found += [(m, r.path) for r in module.router.routes for m in r.methods & {"POST", "PUT"}]
    for module in (console_queries, console_reviews):
        found += [(m, r.path) for r in module.router.routes for m in r.methods & {"POST", "PUT"}]
    return [(m, p.replace("{slug}", "demo-research").replace("{query_id}", "x")) for m, p in found]


def test_every_route_refuses_a_body_over_its_limit(app) -> None:
    routes = _body_routes(app)
    assert len(routes) >= 15  # pages and APIs alike
    with client(app) as http:
        for method, path in routes:
            if path == "/api/choices/import":
                continue  # its own limit, tested below
            declared = http.request(
                method, path, content=b"x", headers={"content-length": str(300 * 2**20)}
            )
            assert declared.status_code == 413, (method, path, declared.status_code)
            sent = http.request(
                method,
                path,
                content=b"{" + b" " * DEFAULT_BODY_LIMIT + b"}",
                headers={"content-type": "application/json"},
            )
            assert sent.status_code == 413, (method, path, sent.status_code)
            assert "too large" in sent.text


def test_the_import_has_its_own_larger_limit(app) -> None:
    from confide.choices.batch import MAX_BYTES

    with client(app) as http:
        big = http.post(
            "/api/choices/import", content=b"x", headers={"content-length": str(MAX_BYTES + 1)}
        )
        assert big.status_code == 413
        fits = http.post("/api/choices/import", content=b"x" * (DEFAULT_BODY_LIMIT + 1))
        assert fits.status_code != 413  # (refused for want of credentials instead)


def test_a_streamed_body_is_cut_off_at_the_limit(app) -> None:
    pulled = []

    def chunks() -> Iterator[bytes]:
        for _ in range(300 * 16):  # 300 MB in 64 KB chunks, never announced
            pulled.append(1)
            yield b" " * 65536

    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        try:
            answer = http.post(
                "/api/choices/identity/start",
                content=chunks(),
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 413
        except httpx.TransportError:
            pass  # the server answered 413 and closed while the client was still sending
    assert len(pulled) < 300 * 16 // 4, "most of the body was read"


def _echo_app(proxies: list[str]) -> TrustedProxies:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "client": request.client.host if request.client else None,
                "scheme": request.url.scheme,
                "xff": request.headers.get("x-forwarded-for"),
            }
        )

    return TrustedProxies(Starlette(routes=[Route("/", echo)]), proxies=proxies)


@pytest.mark.parametrize(
    ("peer", "proxies", "xff", "seen"),
    [
        ("127.0.0.1", [], "203.0.113.9", "127.0.0.1"),  # loopback is not trusted by default
        ("192.0.2.7", ["10.0.0.0/8"], "203.0.113.9", "192.0.2.7"),  # nor any other address
        ("10.0.0.5", ["10.0.0.0/8"], "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", ["10.0.0.0/8"], "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # spoofed left
        ("10.0.0.5", ["10.0.0.0/8"], "203.0.113.9, 10.0.0.8", "203.0.113.9"),  # two proxies
        ("10.0.0.5", ["10.0.0.0/8"], "not-an-address", "10.0.0.5"),
    ],
)
def test_forwarded_for_is_believed_only_from_configured_proxies(peer, proxies, xff, seen):
    trusted = peer.startswith("10.")
    with TestClient(_echo_app(proxies), client=(peer, 5000)) as http:
        answer = http.get("/", headers={"X-Forwarded-For": xff, "X-Forwarded-Proto": "https"})
    assert answer.json()["client"] == seen
    assert answer.json()["xff"] is None  # never passed on to a handler
    assert answer.json()["scheme"] == ("https" if trusted else "http")


def test_the_throttle_counts_the_real_peer_when_no_proxy_is_configured(world) -> None:
    from web_console_world import staff_console

    from confide.access.signin import SignInConfig

    app = world.app(config=SignInConfig(min_seconds=0, email_starts=2))
    with client(app, client=("127.0.0.1", 5000)) as http:
        token = csrf_of(http.get("/staff/sign-in").text)
        statuses = []
        for n in range(3):  # a "new address" each time, claimed in a header
            statuses.append(
                http.post(
                    "/staff/sign-in",
                    data={"csrf_token": token, "email": "spoof@x.example"},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"},
                ).status_code
            )
    assert statuses == [200, 200, 429]
    assert staff_console(app).signin.config.email_starts == 2


def test_private_answers_and_downloads_are_never_cached(app, world) -> None:
    with client(app) as http:
        token = sign_in(http, world, email_of("researcher"))
        assert token
        for path in (
            "/",
            "/staff",
            "/staff/projects",
            "/api/choices/me",
            "/register.csv",
            "/register.json",
            "/no-such-page",
        ):
            answer = http.get(path)
            assert answer.headers.get("cache-control") == "no-store", path
        asset = http.get("/assets/manifest.json")
        assert asset.status_code == 200 and asset.headers.get("cache-control") != "no-store"


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("https://evil.example/about", "/about"),
        ("//evil.example/about", "/about"),
        ("/\\evil.example/about", "/evil.example/about"),
        ("/identity?x=1", "/identity?x=1"),
    ],
)
def test_redirects_never_leave_the_site(given, safe) -> None:
    assert local_location(given) == safe


def test_the_trailing_slash_redirect_ignores_host(app) -> None:
    with client(app, follow_redirects=False) as http:
        answer = http.get("/about/", headers={"Host": "evil.example"})
    assert answer.status_code == 307
    assert answer.headers["location"] == "/about"  # a path: the browser stays on this site


def test_api_validation_errors_never_echo_what_was_sent(app) -> None:
    with client(app) as http:
        for body in (
            {"nhs_number": [KNOWN], "birth_date": "1980-05-17", "postcode": "LS1 4AP"},
            {"nhs_number": KNOWN, "birth_date": {"LS1 4AP": KNOWN}, "postcode": 7},
            {"nhs_number": KNOWN},
        ):
            answer = http.post("/api/choices/identity/start", json=body)
            assert answer.status_code == 422
            assert KNOWN not in answer.text and "LS1 4AP" not in answer.text, answer.text
            assert "input" not in answer.json()["detail"][0]


def test_the_api_refuses_markup_the_forms_refuse(app, world) -> None:
    secret = world.parties.access.create_client("demo-university", email_of("researcher"))
    with client(app) as http:
        token = http.post(
            "/api/access/token",
            data={
                "grant_type": "client_credentials",
                "client_id": secret[0],
                "client_secret": secret[1],
            },
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        base = {
            "title": "Asthma in young adults",
            "purpose": "research",
            "legal_basis": "public_task",
            "datasets": {"patients": ["birth_year"]},
            "window_start": "2010-01-01",
            "window_end": "2020-01-01",
            "expires_on": "2027-06-01",
        }
        for field, value, words in (
            ("title", "<script>alert(1)</script>", "must not contain HTML"),
            ("summary", "See <img src=x onerror=alert(1)>", "must not contain HTML"),
            ("summary", f"About {KNOWN}", "NHS number"),
        ):
            answer = http.post("/api/access/projects", json={**base, field: value}, headers=auth)
            assert answer.status_code == 422, answer.text
            assert words in answer.text and value not in answer.text


def test_csrf_token_changes_at_sign_in_and_the_old_one_is_refused(app, world) -> None:
    with client(app) as http:
        before = csrf_of(http.get("/staff/sign-in").text)
        after = sign_in(http, world, email_of("researcher"))
        assert after != before
        refused = http.post("/staff/sign-out", data={"csrf_token": before})
        assert refused.status_code == 403
        assert http.post("/staff/sign-out", data={"csrf_token": after}).status_code == 200


def test_concurrent_oversized_posts_leave_the_app_serving(app) -> None:
    with serve(app) as url:
        errors = []

        def flood() -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                try:
                    http.post("/api/choices/identity/start", content=b"{" + b" " * 2**22)
                except httpx.TransportError:
                    pass
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(exc)

        threads = [threading.Thread(target=flood) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert httpx.get(f"{url}/about", timeout=10).status_code == 200
