"""Staff sign-in and the consoles' home: email → one-time code → organisation → home.

People (researchers, approvers, output checkers, administrators) sign in with the email the
access party holds for them; the code goes through the same notifier as the patients' codes
(the demo outbox in a demo). Programs keep using bearer tokens on the API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from confide.access.service import Access
from confide.access.signin import CodeSender, NotSignedIn, StaffSignIn, normal_email
from confide.common.errors import InvalidInput
from confide.tre.review import ReviewQueue
from confide.tre.service import QueryService
from confide.web.context import WebState, client_of
from confide.web.forms import Form, error_summary, posted_form, read_form
from confide.web.pages import console_approvals, console_projects, console_queries, console_reviews
from confide.web.pages.staff_context import (
    CHALLENGE,
    STAFF,
    STARTED,
    TOKEN,
    ChooseOrganisation,
    StaffConsole,
    StaffRoute,
    console,
    page,
    principal,
    see_other,
)
from confide.web.security import rotate_csrf

router = APIRouter(prefix="/staff", include_in_schema=False, route_class=StaffRoute)


def include_staff_pages(
    app: FastAPI,
    state: WebState,
    access: Access,
    queries: QueryService,
    review: ReviewQueue,
    *,
    access_folder: Path,
    sender: CodeSender | None,
    signin_store: Access | None = None,
) -> None:
    """Mount the staff consoles over the wired parties (called by ``create_app``);
    ``signin_store`` is the access party's store for sign-ins where the party is served
    elsewhere."""
    signin = StaffSignIn.open(signin_store or access, access_folder, sender=sender)
    state.extra[STAFF] = StaffConsole(access, signin, queries, review)
    for module in (console_projects, console_queries, console_approvals, console_reviews):
        app.include_router(module.router)
    app.include_router(router)


def _signed_in(request: Request) -> bool:
    token = request.session.get(TOKEN)
    if not isinstance(token, str):
        return False
    try:
        console(request).signin.memberships(token)
    except NotSignedIn:
        request.session.pop(TOKEN, None)
        return False
    return True


@router.get("")
def home(request: Request) -> Response:
    """What the signed-in person can do here, by role; the sign-in page otherwise."""
    if not _signed_in(request):
        return see_other("/staff/sign-in")
    try:
        who = principal(request)
    except ChooseOrganisation:
        return see_other("/staff/organisation")
    return page(request, "staff-home.html", who)


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return page(request, "staff-sign-in.html", None)


def _field_error(request: Request, template: str, field: str, message: str) -> Response:
    context = {
        "errors": error_summary({field: message}),
        "field_errors": {field: message},
        "message": request.session.get(STARTED, ""),
    }
    return page(request, template, None, context, status_code=422)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Send a code if the email is known; the next page says the same either way."""
    form = await read_form(request)
    raw = form.get("email")
    try:
        email = normal_email(raw)
    except InvalidInput as exc:
        return _field_error(request, "staff-sign-in.html", "email", exc.message)
    paced = await run_in_threadpool(console(request).signin.begin_start, email, client_of(request))
    started = await paced.settle_async()  # the floor and any throttle hold: a timer, no thread
    request.session.pop(TOKEN, None)
    request.session[CHALLENGE] = started.challenge_id
    request.session[STARTED] = started.message
    return see_other("/staff/code")


@router.get("/code")
def code_page(request: Request) -> Response:
    if not request.session.get(CHALLENGE):
        return see_other("/staff/sign-in")
    return page(request, "staff-code.html", None, {"message": request.session.get(STARTED, "")})


@router.post("/code")
async def code_submit(request: Request) -> Response:
    form = await read_form(request)
    challenge = request.session.get(CHALLENGE)
    if not isinstance(challenge, str):
        return see_other("/staff/sign-in")
    code = "".join(form.get("code").split())
    if not code:
        return _field_error(request, "staff-code.html", "code", "Enter the code")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return _field_error(request, "staff-code.html", "code", "The code must be 6 numbers")
    signin = console(request).signin
    paced = await run_in_threadpool(signin.begin_verify, challenge, code, client_of(request))
    try:
        token = await paced.settle_async()
    except NotSignedIn as exc:
        return _field_error(request, "staff-code.html", "code", exc.message)
    for key in (CHALLENGE, STARTED):
        request.session.pop(key, None)
    request.session[TOKEN] = token
    rotate_csrf(request)
    return see_other("/staff")


def _organisation_page(request: Request, error: str | None = None) -> Response:
    memberships = console(request).signin.memberships(request.session.get(TOKEN))
    context = {
        "memberships": memberships,
        "errors": [{"text": error, "href": "#organisation"}] if error else None,
        "field_errors": {"organisation": error} if error else {},
    }
    return page(request, "staff-organisation.html", None, context, 422 if error else 200)


@router.get("/organisation")
def organisation_page(request: Request) -> Response:
    """Choose which organisation to act for (people who belong to several)."""
    return _organisation_page(request)


@router.post("/organisation")
def organisation_choose(request: Request, form: Form = Depends(posted_form)) -> Response:
    try:
        console(request).signin.choose(request.session.get(TOKEN), form.get("organisation"))
    except InvalidInput as exc:
        return _organisation_page(request, exc.message)
    return see_other("/staff")


@router.post("/sign-out")
def sign_out(request: Request, _form: Form = Depends(posted_form)) -> Response:
    token = request.session.pop(TOKEN, None)
    if isinstance(token, str):
        console(request).signin.end(token)
    for key in (CHALLENGE, STARTED):
        request.session.pop(key, None)
    rotate_csrf(request)
    context = {
        "title": "You have signed out",
        "message": "Your staff session has ended on this device.",
        "status": 200,
    }
    return page(request, "staff-problem.html", None, context)
