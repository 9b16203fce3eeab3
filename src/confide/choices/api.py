"""HTTP API of the choices registry: the patient's online journey and GP systems.

``make_router`` returns a FastAPI ``APIRouter`` that the web app mounts. Patients confirm who
they are (start → code → verify), then read and change their own choices with the session
token as a bearer token. GP systems record type 1 codes with a shared bearer token (one token
for all GP systems for now: per-system credentials are future work).
"""

# No "from __future__ import annotations": FastAPI must see the dependency closures.

import hmac
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from confide.choices.identity import IdentityService, NotVerified, TooManyAttempts
from confide.choices.model import Actor, Channel, ChoiceEvent, Choices
from confide.choices.registry import ChoicesRegistry
from confide.common.errors import ConfideError, InvalidInput


class ErrorOut(BaseModel):
    error: str
    hint: str | None = None


class StartIn(BaseModel):
    nhs_number: str = Field(description="10-digit NHS number (spaces allowed).")
    birth_date: str = Field(description="Date of birth, YYYY-MM-DD.")
    postcode: str = Field(description="Home postcode as registered with the GP practice.")


class StartOut(BaseModel):
    challenge_id: str
    message: str
    expires_in: int = Field(description="Seconds the code stays valid.")


class VerifyIn(BaseModel):
    challenge_id: str
    code: str = Field(description="The 6-digit code that was sent.")


class SessionOut(BaseModel):
    session_token: str = Field(description="Send as 'Authorization: Bearer <token>'.")
    expires_in: int


class ChoicesOut(BaseModel):
    share_nothing: bool
    no_research: bool
    no_planning: bool
    no_commercial: bool


class ChangeIn(BaseModel):
    changes: dict[str, bool] = Field(
        description='Choices to turn on (true) or off (false), e.g. {"no_research": true}.'
    )


class EventOut(BaseModel):
    change_id: str
    changes: dict[str, bool]
    effective_at: datetime
    recorded_at: datetime
    channel: str
    actor: str


class Type1In(BaseModel):
    nhs_number: str
    dissent: bool = Field(description="true: dissent code added; false: dissent withdrawn.")
    recorded_on: date = Field(description="Date of the code in the GP record.")


class Type1Out(BaseModel):
    recorded: bool = Field(description="false when the same code had been recorded already.")
    event: EventOut | None = None


class ImportOut(BaseModel):
    lines: int
    recorded: int


class RejectedLine(BaseModel):
    line: int
    reason: str


class ImportRejectedOut(BaseModel):
    error: str
    hint: str | None = None
    lines: int
    recorded: int
    rejected: list[RejectedLine]


_STATUS = {TooManyAttempts: 429, NotVerified: 401, InvalidInput: 422}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not verified (code or session not valid)."},
    422: {"model": ErrorOut, "description": "Invalid input."},
    429: {
        "model": ErrorOut,
        "description": "Too many attempts from this client: try again after Retry-After.",
    },
}


def _fail(exc: ConfideError) -> HTTPException:
    code = next((c for kind, c in _STATUS.items() if isinstance(exc, kind)), 400)
    retry = getattr(exc, "retry_after", 0)
    headers = {"Retry-After": str(retry)} if code == 429 and retry else None
    return HTTPException(status_code=code, detail=exc.as_dict(), headers=headers)


def _event_out(event: ChoiceEvent) -> EventOut:
    return EventOut(
        change_id=event.change_id,
        changes={c.value: v for c, v in event.changes.items()},
        effective_at=event.effective_at,
        recorded_at=event.recorded_at,
        channel=event.channel.value,
        actor=event.actor.value,
    )


def _choices_out(choices: Choices) -> ChoicesOut:
    return ChoicesOut(**choices.as_dict())


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _fail(NotVerified("Sign in first.", hint="Send 'Authorization: Bearer <token>'."))
    return token.strip()


def make_router(
    registry: ChoicesRegistry,
    identity: IdentityService,
    *,
    notify: Callable[[str, ChoiceEvent], None],
    gp_token: str | None = None,
) -> APIRouter:
    """The choices API. ``notify`` tells the person a change was made (as the web pages do):
    required, so no channel can change choices silently. ``gp_token`` enables the GP-system
    endpoint (shared bearer token)."""
    router = APIRouter(tags=["choices"])

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def person(authorization: Annotated[str | None, Header()] = None) -> str:
        try:
            return identity.person(_bearer(authorization))
        except ConfideError as exc:
            raise _fail(exc) from None

    @router.post(
        "/identity/start",
        response_model=StartOut,
        status_code=status.HTTP_202_ACCEPTED,
        responses=_ERRORS,
        summary="Confirm who you are: send a one-time code if the details match",
    )
    async def start(body: StartIn, who: Annotated[str, Depends(client)]) -> StartOut:
        paced = await run_in_threadpool(
            identity.begin_start, body.nhs_number, body.birth_date, body.postcode, who
        )
        try:
            started = await paced.settle_async()  # floor and hold: a timer, not a thread
        except ConfideError as exc:
            raise _fail(exc) from None
        return StartOut(**started.__dict__)

    @router.post(
        "/identity/verify",
        response_model=SessionOut,
        responses=_ERRORS,
        summary="Exchange the one-time code for a short-lived session token",
    )
    async def verify(body: VerifyIn, who: Annotated[str, Depends(client)]) -> SessionOut:
        paced = await run_in_threadpool(identity.begin_verify, body.challenge_id, body.code, who)
        try:
            session = await paced.settle_async()
        except ConfideError as exc:
            raise _fail(exc) from None
        return SessionOut(session_token=session.token, expires_in=session.expires_in)

    @router.get("/me", response_model=ChoicesOut, responses=_ERRORS, summary="Your current choices")
    def read_mine(number: Annotated[str, Depends(person)]) -> ChoicesOut:
        return _choices_out(registry.current(number))

    @router.put(
        "/me",
        response_model=ChoicesOut,
        responses=_ERRORS,
        summary="Change your choices (applies to the very next query or release)",
    )
    def change_mine(body: ChangeIn, number: Annotated[str, Depends(person)]) -> ChoicesOut:
        try:
            event = registry.set(number, body.changes, Channel.ONLINE, Actor.SELF)
        except ConfideError as exc:
            raise _fail(exc) from None
        notify(number, event)
        return _choices_out(registry.current(number))

    @router.get(
        "/me/history",
        response_model=list[EventOut],
        responses=_ERRORS,
        summary="Every change to your choices, oldest first",
    )
    def my_history(number: Annotated[str, Depends(person)]) -> list[EventOut]:
        return [_event_out(e) for e in registry.history(number)]

    @router.post(
        "/gp/type1",
        response_model=Type1Out,
        responses={**_ERRORS, 503: {"model": ErrorOut, "description": "Not enabled."}},
        summary="GP systems: record a type 1 dissent code (or its withdrawal)",
    )
    def gp_type1(body: Type1In, authorization: Annotated[str | None, Header()] = None) -> Type1Out:
        if not gp_token:
            raise HTTPException(503, detail={"error": "The GP-system endpoint is not enabled."})
        given = (authorization or "").partition(" ")[2].strip()
        if not hmac.compare_digest(given.encode(), gp_token.encode()):
            raise HTTPException(401, detail={"error": "GP-system credentials are not valid."})
        try:
            event = registry.apply_gp_code(body.nhs_number, body.dissent, body.recorded_on)
        except ConfideError as exc:
            raise _fail(exc) from None
        return Type1Out(recorded=event is not None, event=_event_out(event) if event else None)

    @router.post(
        "/import",
        response_model=ImportOut,
        responses={
            **_ERRORS,
            422: {"model": ImportRejectedOut, "description": "Lines rejected: none recorded."},
            503: {"model": ErrorOut, "description": "Not enabled."},
        },
        summary="Practices, proxies and the national service: record many choices from a CSV "
        "file (all or nothing)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    async def import_csv(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> ImportOut:
        """Rows ``nhs_number,choice,channel,date`` (see docs/choices.md): every row is recorded,
        or none is and every rejected line is listed with its reason."""
        from confide.choices.batch import MAX_BYTES, ImportRejected, import_choices

        if not gp_token:
            raise HTTPException(503, detail={"error": "The import endpoint is not enabled."})
        given = (authorization or "").partition(" ")[2].strip()
        if not hmac.compare_digest(given.encode(), gp_token.encode()):
            raise HTTPException(401, detail={"error": "Import credentials are not valid."})
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BYTES:
                raise HTTPException(413, detail={"error": "The file is too large."})
        try:
            done = await run_in_threadpool(import_choices, registry, bytes(data))
        except ImportRejected as exc:
            raise HTTPException(422, detail=exc.as_dict()) from None
        except ConfideError as exc:
            raise _fail(exc) from None
        return ImportOut(lines=done.lines, recorded=done.recorded)

    return router
