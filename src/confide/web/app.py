"""Build the web app: the parties' HTTP APIs under ``/api`` and the HTML pages around them.

``create_app(home)`` opens each party from the home folder unless it is given one (tests and
the demo pass their own). The app closes only what it opened. API routes answer in JSON as
their routers define; every other route answers with an NHS.UK-styled page, including errors,
which never repeat what was typed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from confide.access.api import make_router as access_router
from confide.choices.api import make_router as choices_router
from confide.choices.batch import MAX_BYTES as IMPORT_MAX_BYTES
from confide.choices.identity import OutboxNotifier, TooManyAttempts
from confide.common.errors import ConfideError
from confide.common.home import Home
from confide.composition import Composition, compose, identity_for
from confide.ledger.api import make_router as ledger_router
from confide.web.context import WebState

if TYPE_CHECKING:
    from confide.access.service import Access
    from confide.choices.identity import IdentityService
    from confide.choices.registry import ChoicesRegistry
    from confide.ledger.log import Ledger
from confide.web.forms import BodyTooLarge
from confide.web.hardening import (
    TOO_LARGE,
    BodyLimit,
    PrivateByDefault,
    TrustedProxies,
    quiet_errors,
)
from confide.web.notices import ChangeNotices, OutboxNotices, tell_person
from confide.web.notify import NotifyMessenger, NotifySettings, WithheldOutbox
from confide.web.openapi_errors import with_problem_errors
from confide.web.pages import demo as demo_pages
from confide.web.pages import letter, patient, public, register
from confide.web.pages import usage as usage_pages
from confide.web.pages.rollout import include_rollout
from confide.web.rendering import render, render_text
from confide.web.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    CsrfRefused,
    SafeErrors,
    SecurityHeaders,
    session_secret,
)

STATIC = Path(__file__).parent / "static"
API = "/api/"

_TITLES = {
    400: "There is a problem with what was sent",
    403: "This form could not be accepted",
    404: "Page not found",
    405: "This page cannot do that",
    413: "What was sent is too large",
    422: "There is a problem with what was sent",
    429: "Too many attempts",
}


def _problem(request: Request, status: int, message: str, hint: str | None = None) -> Response:
    return render(
        request,
        "problem.html",
        {
            "title": _TITLES.get(status, "Sorry, there is a problem"),
            "message": message,
            "hint": hint,
        },
        status_code=status,
    )


def _status_of(exc: ConfideError) -> int:
    if isinstance(exc, CsrfRefused):
        return 403
    if isinstance(exc, BodyTooLarge):
        return 413
    if isinstance(exc, TooManyAttempts):
        return 429
    return 422


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(API):
            return await http_exception_handler(request, exc)
        if exc.status_code == 404:
            message = "If you typed the web address, check it is correct."
        else:
            message = "The page could not do what was asked. Nothing was changed."
        return _problem(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith(API):
            return JSONResponse({"detail": quiet_errors(exc.errors())}, status_code=422)
        return _problem(request, 422, "What was sent could not be read. Nothing was changed.")

    @app.exception_handler(ConfideError)
    async def confide_error(request: Request, exc: ConfideError) -> Response:
        status = _status_of(exc)
        if request.url.path.startswith(API):
            return JSONResponse({"detail": exc.as_dict()}, status_code=status)
        return _problem(request, status, exc.message, exc.hint)


def _messenger(
    demo: bool, outbox: Path, opened: list[Callable[[], Any]]
) -> NotifyMessenger | WithheldOutbox | None:
    """How codes and notices leave a served app: the demo outbox (None here), GOV.UK Notify
    when configured, otherwise withheld (a code is never written in plain text)."""
    if demo:
        return None
    settings = NotifySettings.from_env()
    if settings is None:
        return WithheldOutbox(outbox)
    client = settings.client()
    opened.append(client.close)
    return NotifyMessenger(client, settings)


def create_app(
    home: Home,
    *,
    registry: ChoicesRegistry | None = None,
    identity: IdentityService | None = None,
    ledger: Ledger | None = None,
    access: Access | None = None,
    notices: ChangeNotices | None = None,
    demo: bool = False,
    gp_token: str | None = None,
    secure_cookies: bool = True,
    queries: Any = None,
    review: Any = None,
    usage: usage_pages.UsageSource | None = None,
    linkage_quality: Callable[[], list[dict[str, Any]]] | None = None,
    trusted_proxies: Iterable[str] = (),
    body_limits: Mapping[str, int] | None = None,
    parties: Composition | None = None,
    relay_every: float | None = None,
) -> FastAPI:
    """The Confide web app over ``home``; parties not given are opened (and closed) by it.

    ``demo`` adds the demo outbox page (it shows one-time codes: never in production).
    ``usage`` computes a patient's usage report from their verified NHS number, at the
    choices and pseudonymiser side (``confide.web.cli.installation_usage``); without it the
    usage page says the report is not available here.
    ``secure_cookies=False`` is only for plain-HTTP use away from localhost.
    ``trusted_proxies`` are the addresses (or networks) of the reverse proxies whose
    ``X-Forwarded-For`` is believed; from anywhere else it is ignored. ``body_limits`` raise
    or lower the body limit for path prefixes (``confide.web.hardening``).
    ``linkage_quality`` gives the pseudonymiser's linkage rates per source (counts only) for
    the transparency page.
    Parties not given come from ``parties`` or else from a composition of ``home`` (never
    opened here any other way); ``relay_every`` (seconds) runs that composition's relay in
    the background too, so events a failure left pending are retried while the app serves.
    """
    opened: list[Callable[[], Any]] = []
    composed = parties
    if composed is None and (registry is None or ledger is None or access is None):
        composed = compose(home)  # the one composition; the app closes what it opened
        opened.append(composed.close)
    if composed is not None:
        registry = registry or composed.choices
        ledger = ledger or composed.ledger
        access = access or composed.access
    assert registry is not None and ledger is not None and access is not None
    outbox = home.root / "outbox"
    messenger = _messenger(demo, outbox, opened)
    if identity is None:
        remote = composed is not None and composed.is_remote("choices")
        checks = composed.identity_registry if composed is not None and remote else registry
        identity = identity_for(checks, home.root, notifier=messenger or OutboxNotifier(outbox))
    state = WebState(
        registry=registry,
        identity=identity,
        ledger=ledger,
        notices=notices or messenger or OutboxNotices(outbox),
        outbox=outbox,
        demo=demo,
    )
    if usage is not None:
        state.extra[usage_pages.SOURCE] = usage
    if linkage_quality is not None:
        state.extra[public.LINKAGE_QUALITY] = linkage_quality

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        relaying = (
            asyncio.create_task(_relay_in_background(composed, relay_every))
            if composed is not None and relay_every
            else None
        )
        try:
            yield
        finally:
            if relaying is not None:
                relaying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relaying
            for close in reversed(opened):
                close()

    app = FastAPI(
        title="Confide",
        summary="Patients' choices, the transparency log and project access.",
        docs_url=None,  # the interactive docs load scripts from elsewhere: the CSP forbids it
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.confide = state
    app.include_router(ledger_router(ledger), prefix="/api/ledger")

    def notify(number: str, event: Any) -> None:
        tell_person(state.identity, state.notices, number, event)

    app.include_router(
        choices_router(registry, identity, notify=notify, gp_token=gp_token), prefix="/api/choices"
    )
    app.include_router(access_router(access))
    if queries is not None and review is not None:
        from confide.tre.api import make_router as tre_router
        from confide.web.pages.staff import include_staff_pages

        app.include_router(tre_router(queries, review, access))
        include_staff_pages(
            app, state, access, queries, review,
            access_folder=home.party("access"), sender=identity.notifier,
            signin_store=composed.access_store
            if composed is not None and composed.is_remote("access") else None,
        )  # fmt: skip
    include_rollout(app, home, ledger, access)  # the roll-out's API, public and pause pages
    for pages in (patient, letter, public, register, usage_pages):
        app.include_router(pages.router)
    if demo:
        app.include_router(demo_pages.router)
    app.mount("/assets", StaticFiles(directory=STATIC), name="assets")
    _install_error_pages(app)
    app.openapi = with_problem_errors(app)  # type: ignore[method-assign]  # FastAPI's hook

    error_page = render_text(
        "problem.html",
        {
            "title": "Sorry, there is a problem with the service",
            "message": "Try again later. Nothing you sent was changed.",
        },
    ).encode()
    too_large_page = render_text(
        "problem.html", {"title": _TITLES[413], "message": TOO_LARGE}
    ).encode()
    # Added innermost first: headers wrap everything, including the 500 page.
    limits = {"/api/choices/import": IMPORT_MAX_BYTES, **(body_limits or {})}
    app.add_middleware(BodyLimit, page=lambda: too_large_page, limits=limits)
    app.add_middleware(SafeErrors, page=lambda: error_page)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(home.party("web")),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="strict",
        https_only=secure_cookies,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(PrivateByDefault)
    app.add_middleware(TrustedProxies, proxies=trusted_proxies)
    return app


async def _relay_in_background(parties: Composition, every: float) -> None:
    """Deliver the composition's pending events every ``every`` seconds (off the event loop),
    so an event a failure left pending is retried without anyone asking."""
    from starlette.concurrency import run_in_threadpool

    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):  # a failed round stays pending; try next time
            await run_in_threadpool(parties.deliver)
