"""A slow researcher query, or a burst of held identity checks, never freezes the patients'
pages: the app served by uvicorn on loopback, real parties, real HTTP."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from web_console_world import (
    LENIENT,
    TOTAL_SQL,
    ConsoleWorld,
    build_console_world,
    email_of,
    serve,
    staff_console,
)
from web_seed import csrf_of

from confide.choices.identity import IdentityConfig, IdentityService
from confide.web.app import create_app

QUERY_SECONDS = 4.0
QUICK = 1.5  # the most a patient page may take while the slow work runs (on a busy machine)
TYPICAL = 0.5  # the median


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[ConsoleWorld]:
    made = build_console_world(tmp_path_factory.mktemp("nonblocking") / "home", patients=30)
    yield made
    made.close()


@pytest.fixture(scope="module")
def base_url(world) -> Iterator[str]:
    identity = IdentityService.open(
        world.parties.choices,
        world.home.root,
        config=IdentityConfig(min_seconds=0.25, person_starts=1, hold_cap=3.0),
    )
    app = create_app(
        world.home,
        registry=world.parties.choices,
        identity=identity,
        ledger=world.parties.ledger,
        access=world.parties.access,
        demo=True,
        queries=SlowQueries(world.parties.service),
        review=world.parties.review,
        secure_cookies=False,  # plain HTTP on loopback
        trusted_proxies=["127.0.0.1"],  # the guessers' addresses come from X-Forwarded-For
    )
    staff_console(app).signin.config = LENIENT
    with serve(app) as url:
        yield url


class SlowQueries:
    """The real query service, whose every run first takes ``QUERY_SECONDS`` of work."""

    def __init__(self, service) -> None:  # type: ignore[no-untyped-def]
        self._service = service

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(QUERY_SECONDS)  # a query as slow as a heavy one, inside the worker
        return self._service.run(*args, **kwargs)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._service, name)


def _timed_pages(url: str, until: threading.Event) -> list[float]:
    """Patient pages fetched one after another until ``until`` is set (at least once each):
    their latencies."""
    times = []
    with httpx.Client(base_url=url, timeout=30) as http:
        while not times or not until.is_set():
            for path in ("/", "/identity", "/about"):
                began = time.perf_counter()
                assert http.get(path).status_code == 200
                times.append(time.perf_counter() - began)
    return times


def test_patient_pages_answer_quickly_while_a_slow_query_runs(world, base_url) -> None:
    warm = threading.Event()
    warm.set()
    _timed_pages(base_url, warm)  # templates compiled, connections made
    done = threading.Event()
    outcome: dict[str, object] = {}

    def researcher() -> None:
        with httpx.Client(base_url=base_url, timeout=60, follow_redirects=True) as http:
            token = csrf_of(http.get("/staff/sign-in").text)
            email = email_of("researcher")
            http.post("/staff/sign-in", data={"csrf_token": token, "email": email})
            signed = http.post(
                "/staff/code", data={"csrf_token": token, "code": world.latest_code(email)}
            )
            token = csrf_of(signed.text)
            began = time.perf_counter()
            ran = http.post(
                "/staff/projects/demo-research/console",
                data={"csrf_token": token, "sql": TOTAL_SQL},
            )
            outcome.update(status=ran.status_code, seconds=time.perf_counter() - began)
        done.set()

    thread = threading.Thread(target=researcher)
    thread.start()
    try:
        times = _timed_pages(base_url, done)
    finally:
        thread.join(timeout=60)
    assert outcome["status"] == 200 and outcome["seconds"] >= QUERY_SECONDS
    assert len(times) >= 6, "pages were not served while the query ran"
    assert max(times) < QUICK, [round(t, 2) for t in times]
    assert statistics.median(times) < TYPICAL


def test_held_identity_checks_do_not_hold_anyone_else(world, base_url) -> None:
    world.parties.choices.enrol_demographics(
        [("9434765919", date(1980, 5, 17), "ls14ap", "B82001", None, "jo@example.org")]
    )
    form = {
        "nhs_number": "9434765919",
        "birth[day]": "17",
        "birth[month]": "5",
        "birth[year]": "1980",
        "postcode": "LS1 4AP",
    }
    done = threading.Event()
    held: list[float] = []

    def guesser(n: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            token = csrf_of(http.get("/identity").text)
            began = time.perf_counter()
            answer = http.post(
                "/identity",
                data={"csrf_token": token, **form},
                headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},  # a new address each
            )
            assert answer.status_code == 303
            held.append(time.perf_counter() - began)

    guessers = [threading.Thread(target=guesser, args=(n,)) for n in range(12)]
    for thread in guessers:
        thread.start()
    watcher = threading.Thread(target=lambda: [t.join() for t in guessers] and None)
    watcher.start()

    def finish() -> None:
        watcher.join()
        done.set()

    threading.Thread(target=finish).start()
    times = _timed_pages(base_url, done)
    assert max(held) > 1.0  # the checks on one busy person were held
    assert len(times) >= 6 and max(times) < QUICK, sorted(times)[-3:]
    assert statistics.median(times) < TYPICAL


def _endpoints(routes) -> list:  # type: ignore[no-untyped-def]
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found += _endpoints(inner.routes)
        elif getattr(route, "endpoint", None) is not None:
            found.append(route.endpoint)
    return found


# The only handlers that run on the event loop: each sends its database work to the worker
# pool (``run_in_threadpool``) and waits for its deliberate delay on a timer.
REVIEWED_ASYNC = {
    "confide.web.pages.patient.identity_submit",
    "confide.web.pages.patient.code_submit",
    "confide.web.pages.staff.sign_in",
    "confide.web.pages.staff.code_submit",
    "confide.choices.api.start",
    "confide.choices.api.verify",
    "confide.choices.api.import_csv",  # streams the upload, then imports in the pool
}
PACED = {name for name in REVIEWED_ASYNC if not name.endswith("import_csv")}


def test_only_reviewed_handlers_run_on_the_event_loop(world) -> None:
    import ast
    import inspect
    import textwrap

    app = world.app()
    coroutines = {
        f"{e.__module__}.{e.__name__}": e
        for e in _endpoints(app.routes)
        if inspect.iscoroutinefunction(e) and e.__module__.startswith("confide.")
    }
    assert set(coroutines) == REVIEWED_ASYNC
    for name, endpoint in coroutines.items():
        tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
        calls = {
            getattr(n.func, "id", getattr(n.func, "attr", "")) for n in ast.walk(tree)
            if isinstance(n, ast.Call)
        }  # fmt: skip
        assert "run_in_threadpool" in calls, name
        assert name not in PACED or "settle_async" in calls, name
