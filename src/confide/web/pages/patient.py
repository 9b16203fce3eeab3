"""The patient's journey: start → identity → code → your choices → change → confirmation.

Also the proxy journey (a parent or guardian acting for a child under 13) and sign-out. The
NHS number is read from the identity service on each request (from the opaque session token in
the cookie); it never enters a URL, the cookie, a log line or a page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from confide.choices.identity import NotVerified
from confide.choices.model import Actor, Channel, Choice, Proxy, utc
from confide.common import nhs_number as nhs
from confide.common import postcode
from confide.common.errors import InvalidInput
from confide.web.context import client_of, web_state
from confide.web.forms import (
    Form,
    clean_text,
    error_summary,
    kept,
    parse_date_parts,
    posted_form,
    read_form,
)
from confide.web.notices import tell_person
from confide.web.rendering import render
from confide.web.security import rotate_csrf
from confide.web.wording import BY_CHOICE, CHOICES

router = APIRouter(include_in_schema=False)

# Session keys (values are opaque: a challenge id, a signed session token, a role).
CHALLENGE, TOKEN, ACTOR, ACTING, STARTED, CHANGED = (
    "challenge",
    "token",
    "actor",
    "acting",
    "started_message",
    "changed",
)
STILL_HELD = "still_held"


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _signed_in(request: Request) -> str | None:
    """The NHS number behind this browser's session, or None (ending a dead session)."""
    token = request.session.get(TOKEN)
    if not isinstance(token, str):
        return None
    try:
        return web_state(request).identity.person(token)
    except NotVerified:
        for key in (TOKEN, ACTOR, CHANGED, STILL_HELD):
            request.session.pop(key, None)
        return None


def _ended(request: Request) -> Response:
    return render(request, "session-ended.html", status_code=401)


_FIRST_INPUT = {"birth-date": "birth-date-day"}  # a date's error links to its day box


def _summary(errors: dict[str, str]) -> list[dict[str, str]]:
    """The error summary's list: each message links to its field's first input."""
    return error_summary(errors, _FIRST_INPUT)


@router.get("/")
def start(request: Request) -> Response:
    """The start page (also forgets an unfinished proxy journey)."""
    request.session.pop(ACTING, None)
    return render(request, "start.html")


@router.get("/proxy")
def proxy_page(request: Request) -> Response:
    return render(request, "proxy.html")


@router.post("/proxy")
def proxy_begin(request: Request, _form: Form = Depends(posted_form)) -> Response:
    """Begin as a parent or guardian: the next identity check is the child's."""
    _forget_person(request)
    request.session[ACTING] = Actor.PARENT.value
    return _see_other("/identity")


@router.get("/identity")
def identity_page(request: Request) -> Response:
    return render(request, "identity.html", {"acting": request.session.get(ACTING)})


def _identity_errors(nhs_raw: str, birth: tuple[str, str, str], code_raw: str) -> dict[str, Any]:
    """Field errors and the parsed values (messages never repeat what was typed)."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    number = clean_text(nhs_raw, limit=40) if len(nhs_raw) <= 40 else None
    if not number:
        errors["nhs-number"] = (
            "Enter the NHS number" if number == "" else "Enter a 10-digit NHS number"
        )
    elif nhs.why_invalid(number):
        errors["nhs-number"] = "Enter a valid 10-digit NHS number, like 999 123 4567"
    else:
        values["nhs"] = nhs.normalise(number)
    try:
        values["birth"] = parse_date_parts(*birth, today=utc(None).date())
    except InvalidInput as exc:
        errors["birth-date"] = exc.message
    pc = postcode.normalise(code_raw[:20]) if len(code_raw) <= 20 else None
    if not code_raw.strip():
        errors["postcode"] = "Enter the postcode"
    elif pc is None:
        errors["postcode"] = "Enter a full UK postcode, like LS1 4AP"
    else:
        values["postcode"] = pc
    return {"errors": errors, **values}


IDENTITY_FIELDS = {
    "nhs_number": 40,
    "birth[day]": 4,
    "birth[month]": 4,
    "birth[year]": 4,
    "postcode": 20,
}


@router.post("/identity")
async def identity_submit(request: Request) -> Response:
    """Check the details; the identity service answers the same whether they match or not."""
    form = await read_form(request)
    checked = _identity_errors(
        form.get("nhs_number"),
        (form.get("birth[day]"), form.get("birth[month]"), form.get("birth[year]")),
        form.get("postcode"),
    )
    errors = checked["errors"]
    if errors:
        return render(
            request,
            "identity.html",
            {
                "acting": request.session.get(ACTING),
                "errors": _summary(errors),
                "field_errors": errors,
                "typed": kept(form, IDENTITY_FIELDS),
            },
            status_code=422,
        )
    state = web_state(request)
    paced = await run_in_threadpool(
        state.identity.begin_start,
        checked["nhs"],
        checked["birth"].isoformat(),
        checked["postcode"],
        client_of(request),
    )
    started = await paced.settle_async()  # the floor and any throttle hold: a timer, no thread
    request.session.pop(TOKEN, None)
    request.session[CHALLENGE] = started.challenge_id
    request.session[STARTED] = started.message
    return _see_other("/code")


@router.get("/code")
def code_page(request: Request) -> Response:
    if not request.session.get(CHALLENGE):
        return _see_other("/identity")
    return render(request, "code.html", {"message": request.session.get(STARTED, "")})


@router.post("/code")
async def code_submit(request: Request) -> Response:
    form = await read_form(request)
    challenge = request.session.get(CHALLENGE)
    if not isinstance(challenge, str):
        return _ended(request)
    code = "".join(form.get("code").split())
    error = None
    if not code:
        error = "Enter the code"
    elif not (code.isascii() and code.isdigit() and len(code) == 6):
        error = "The code must be 6 numbers"
    if error is None:
        identity = web_state(request).identity
        paced = await run_in_threadpool(identity.begin_verify, challenge, code, client_of(request))
        try:
            session = await paced.settle_async()
        except NotVerified as exc:
            error = exc.message
    if error is not None:
        return render(
            request,
            "code.html",
            {
                "message": request.session.get(STARTED, ""),
                "errors": _summary({"code": error}),
                "field_errors": {"code": error},
            },
            status_code=422,
        )
    for key in (CHALLENGE, STARTED, CHANGED, STILL_HELD):
        request.session.pop(key, None)
    request.session[TOKEN] = session.token
    rotate_csrf(request)
    request.session[ACTOR] = request.session.pop(ACTING, None) or Actor.SELF.value
    return _see_other("/your-choices")


def _actor(request: Request) -> str:
    return Actor.PARENT.value if request.session.get(ACTOR) == Actor.PARENT.value else "self"


@router.get("/your-choices")
def your_choices(request: Request) -> Response:
    number = _signed_in(request)
    if number is None:
        return _ended(request)
    current = web_state(request).registry.current(number)
    rows = [
        {
            "key": {"text": words.topic},
            "value": {
                "text": words.when_on if getattr(current, words.choice.value) else words.when_off
            },
            "actions": {
                "items": [{"href": "/change", "text": "Change", "visuallyHiddenText": words.topic}]
            },
        }
        for words in CHOICES
    ]
    return render(request, "your-choices.html", {"rows": rows, "actor": _actor(request)})


def _change_page(request: Request, held: set[str], errors: dict[str, str], status: int) -> Response:
    items = [
        {
            "value": words.choice.value,
            "text": words.label,
            "hint": {"text": words.means},
            "checked": words.choice.value in held,
        }
        for words in CHOICES
    ]
    already = Markup("").join(
        Markup('<h2 class="nhsuk-heading-s">{}</h2><p>{}</p>').format(
            words.label, words.already_uploaded
        )
        for words in CHOICES
    )
    context = {
        "items": items,
        "already_uploaded": already,
        "actor": _actor(request),
        "errors": _summary(errors),
        "field_errors": errors,
    }
    return render(request, "change.html", context, status_code=status)


@router.get("/change")
def change_page(request: Request) -> Response:
    number = _signed_in(request)
    if number is None:
        return _ended(request)
    current = web_state(request).registry.current(number)
    return _change_page(request, {c.value for c in current.held()}, {}, 200)


@router.post("/change")
def change_submit(request: Request, form: Form = Depends(posted_form)) -> Response:
    """Record the difference between what is held and what was ticked, as one change."""
    number = _signed_in(request)
    if number is None:
        return _ended(request)
    state = web_state(request)
    current = state.registry.current(number)
    held = {c.value for c in current.held()}
    wanted = set(form.all("choices"))
    known = {c.value for c in Choice}
    if not wanted <= known or len(form.all("choices")) > len(known):
        error = "Choose from the options shown"
        return _change_page(request, held, {"choices": error}, 422)
    changes = {c: c.value in wanted for c in Choice if (c.value in wanted) != (c.value in held)}
    if not changes:
        error = "You have not changed anything. Tick or clear a choice, then save"
        return _change_page(request, held, {"choices": error}, 422)
    parent = _actor(request) == Actor.PARENT.value
    try:
        event = state.registry.set(
            number,
            changes,
            Channel.PROXY if parent else Channel.ONLINE,
            Actor.PARENT if parent else Actor.SELF,
            Proxy(kind=Actor.PARENT) if parent else None,
        )
    except InvalidInput as exc:
        return _change_page(request, held, {"choices": exc.message}, 422)
    tell_person(state.identity, state.notices, number, event)
    request.session[CHANGED] = {c.value: v for c, v in event.changes.items()}
    request.session[STILL_HELD] = _still_held(state.registry, number, event.changes)
    return _see_other("/confirmation")


# How each channel is named to the person, when a fact from it keeps a choice in force.
CHANNEL_WORDS = {
    Channel.GP_CODE: "your GP practice's record (a type 1 objection)",
    Channel.ONLINE: "a change made online",
    Channel.LETTER: "a letter",
    Channel.PHONE: "a phone call",
    Channel.PROXY: "someone acting for you",
}


def _still_held(registry: Any, number: str, changes: dict[Choice, bool]) -> list[str]:
    """Lines for the choices this change turned off that another channel's fact keeps on: a
    change through one channel never undoes another's, and the person must be told so."""
    cleared = [c for c, on in changes.items() if not on]
    if not cleared:
        return []
    current = registry.current(number)
    facts = registry.facts(number)
    lines = []
    for choice in cleared:
        if not getattr(current, choice.value):
            continue
        holding = [CHANNEL_WORDS[ch] for ch, on in sorted(facts.get(choice, {}).items()) if on]
        lines.append(
            f"{BY_CHOICE[choice].label}: still in place because of {' and '.join(holding)}"
        )
    return lines


@router.get("/confirmation")
def confirmation(request: Request) -> Response:
    number = _signed_in(request)
    changed = request.session.get(CHANGED)
    if number is None:
        return _ended(request)
    if not isinstance(changed, dict):
        return _see_other("/your-choices")
    lines = []
    for name, on in changed.items():
        words = BY_CHOICE.get(Choice(name)) if name in {c.value for c in Choice} else None
        if words is not None:
            lines.append(escape(words.when_on if on else words.when_off))
    erased = bool(changed.get(Choice.SHARE_NOTHING.value))
    still = request.session.get(STILL_HELD)
    still_held = [escape(str(line)) for line in still] if isinstance(still, list) else []
    return render(
        request,
        "confirmation.html",
        {"changed": lines, "erased": erased, "actor": _actor(request), "still_held": still_held},
    )


def _forget_person(request: Request) -> None:
    token = request.session.get(TOKEN)
    if isinstance(token, str):
        web_state(request).identity.end(token)
    for key in (TOKEN, ACTOR, CHALLENGE, STARTED, CHANGED, STILL_HELD, ACTING):
        request.session.pop(key, None)


@router.post("/sign-out")
def sign_out(request: Request, _form: Form = Depends(posted_form)) -> Response:
    _forget_person(request)
    rotate_csrf(request)
    return render(
        request,
        "problem.html",
        {
            "title": "You have signed out",
            "message": "Your session has ended on this device.",
            "next_text": "Go to the start page",
        },
    )
