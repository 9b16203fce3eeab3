"""The access HTTP API (``/api/access``): tokens for programs, and the project workflow.

Programs get a bearer token with the OAuth2 client-credentials grant (``POST /token``, client
id and secret in the form body or in HTTP Basic) and send it as ``Authorization: Bearer ...``.
Every other endpoint acts for the token's person and organisation; errors are JSON
``{"detail": {"error": ..., "hint": ...}}`` with 401 (no valid token), 403 (role or rule),
404 (no such project, or not yours: the two are indistinguishable), 409 (wrong state) and 422
(bad input). The token endpoint answers in the RFC 6749 error format instead.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field

from confide.access.errors import BAD_CREDENTIALS, Conflict, Forbidden, Unauthenticated
from confide.access.model import (
    LegalBasis,
    Principal,
    Project,
    ProjectApplication,
    Purpose,
    RecipientKind,
)
from confide.access.protection import protection_from
from confide.access.service import Access
from confide.common.errors import ConfideError, InvalidInput, NotFound

PREFIX = "/api/access"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ClientCredentialsBearer(OAuth2):
    """A bearer token from the client-credentials grant (documented as such in OpenAPI)."""

    def __init__(self, token_url: str) -> None:
        super().__init__(
            flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=token_url)),
            scheme_name="client_credentials",
            description="OAuth2 client credentials: exchange a client id and secret for a "
            "bearer token at the token URL.",
            auto_error=False,
        )

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not token:
            return None
        return token


class ApplicationIn(BaseModel):
    """A project application. The organisation is always the caller's own."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=200)
    purpose: Purpose
    legal_basis: LegalBasis
    datasets: dict[str, list[str]] = Field(
        description="Tables and the columns wanted from each, e.g. "
        '{"events": ["code", "date"]}; ["*"] means every column.'
    )
    window_start: date
    window_end: date
    expires_on: date
    slug: str | None = Field(default=None, max_length=60)
    recipient_kind: RecipientKind | None = Field(
        default=None, description="Defaults to the organisation's kind; must match it."
    )
    summary: str = Field(default="", max_length=4000, description="Lay summary (published).")

    def to_application(self) -> ProjectApplication:
        return ProjectApplication(**self.model_dump())


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="Published; name nobody.")


class ProtectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str = Field(default="sdc", description="sdc (disclosure control) or dp.")
    rules: str = Field(default="acro", description="sdc: acro or opensafely.")
    epsilon_total: float | None = Field(default=None, description="dp: the whole budget.")
    contributions: int = Field(default=1, description="dp: cells one person may count in.")


class ApprovalIn(DecisionIn):
    protection: ProtectionIn | None = Field(
        default=None, description="How the outputs are protected (default: sdc, acro)."
    )


class HistoryItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str
    actor_role: str | None
    at: str


class ProjectOut(BaseModel):
    slug: str
    organisation: str
    organisation_name: str
    title: str
    summary: str
    purpose: Purpose
    recipient_kind: RecipientKind
    legal_basis: LegalBasis
    datasets: dict[str, list[str]]
    window_start: date
    window_end: date
    expires_on: date
    status: str
    created_at: str
    updated_at: str
    history: list[HistoryItem] | None = None


class ProjectList(BaseModel):
    projects: list[ProjectOut]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class OAuthErrorOut(BaseModel):
    """The token endpoint's errors, in OAuth 2.0's own shape (RFC 6749, section 5.2)."""

    error: str
    error_description: str | None = None


def _http_error(exc: ConfideError) -> HTTPException:
    if isinstance(exc, Unauthenticated):
        code = status.HTTP_401_UNAUTHORIZED
    elif isinstance(exc, Forbidden):
        code = status.HTTP_403_FORBIDDEN
    elif isinstance(exc, NotFound):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, Conflict):
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, InvalidInput):
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
    else:
        code = status.HTTP_400_BAD_REQUEST
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return HTTPException(code, detail=exc.as_dict(), headers=headers)


def _oauth_error(code: int, error: str, description: str) -> JSONResponse:
    headers = dict(_NO_STORE)
    if code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="confide"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=code, headers=headers
    )


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Client id and secret from HTTP Basic (RFC 6749 section 2.3.1 form-encodes both)."""
    scheme, value = get_authorization_scheme_param(header)
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(password)


def principal_dependency(
    get_access: Callable[[], Access], *, prefix: str = PREFIX
) -> Callable[..., Principal]:
    """A FastAPI dependency giving the caller's :class:`Principal` (401 without a valid token).

    Other parties' routers (the TRE's query API) use it so authentication is one thing.
    """
    bearer = ClientCredentialsBearer(token_url=f"{prefix}/token")

    def principal(token: str | None = Depends(bearer)) -> Principal:
        if not token:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail={
                    "error": "This needs an access token.",
                    "hint": f"Get one at {prefix}/token with your client id and secret, then "
                    "send it as 'Authorization: Bearer <token>'.",
                },
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            return get_access().authenticate(token)
        except ConfideError as exc:
            raise _http_error(exc) from None

    return principal


def make_router(access: Access | Callable[[], Access], *, prefix: str = PREFIX) -> APIRouter:
    """The ``/api/access`` router over one :class:`Access` (or a function returning it)."""
    get_access: Callable[[], Access] = access if callable(access) else (lambda: access)
    router = APIRouter(prefix=prefix, tags=["access"])
    caller_dependency = Depends(principal_dependency(get_access, prefix=prefix))

    def run(action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ConfideError as exc:
            raise _http_error(exc) from None

    def out(project: Project, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body = project.as_dict()
        if history is not None:
            body["history"] = history
        return body

    @router.post(
        "/token",
        response_model=TokenOut,
        summary="Exchange client credentials for a bearer token",
        responses={
            400: {"description": "Bad request", "model": OAuthErrorOut},
            401: {"description": "Bad client", "model": OAuthErrorOut},
        },
    )
    def token(
        request: Request,
        grant_type: Annotated[str | None, Form()] = None,
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
    ) -> Any:
        if grant_type != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "Only grant_type=client_credentials is supported."
            )
        basic = _basic_credentials(request.headers.get("Authorization"))
        if basic and (client_id or client_secret):
            return _oauth_error(400, "invalid_request", "Send the credentials one way only.")
        cid, secret = basic or (client_id, client_secret)
        if not cid or not secret:
            return _oauth_error(400, "invalid_request", "client_id and client_secret are needed.")
        try:
            issued = get_access().issue_token(cid, secret)
        except Unauthenticated:
            return _oauth_error(401, "invalid_client", BAD_CREDENTIALS)
        return JSONResponse(issued.as_oauth(), headers=_NO_STORE)

    @router.get("/projects", response_model=ProjectList, summary="Projects you may see")
    def list_projects(caller: Principal = caller_dependency) -> Any:
        return {"projects": [out(p) for p in run(lambda: get_access().projects(caller))]}

    @router.post(
        "/projects",
        response_model=ProjectOut,
        status_code=status.HTTP_201_CREATED,
        summary="Apply for a project (creates a draft for your organisation)",
    )
    def apply(body: ApplicationIn, caller: Principal = caller_dependency) -> Any:
        return out(run(lambda: get_access().apply(caller, body.to_application())))

    @router.get("/projects/{slug}", response_model=ProjectOut, summary="One project, with history")
    def show(slug: str, caller: Principal = caller_dependency) -> Any:
        svc = get_access()
        project = run(lambda: svc.project(caller, slug))
        return out(project, run(lambda: svc.history(caller, slug)))

    @router.post("/projects/{slug}/submit", response_model=ProjectOut, summary="Submit a draft")
    def submit(slug: str, caller: Principal = caller_dependency) -> Any:
        return out(run(lambda: get_access().submit(caller, slug)))

    @router.post("/projects/{slug}/approve", response_model=ProjectOut, summary="Approve")
    def approve(slug: str, body: ApprovalIn, caller: Principal = caller_dependency) -> Any:
        def act() -> Any:
            chosen = body.protection
            data = chosen.model_dump(exclude_none=True) if chosen is not None else None
            if data is not None and data.get("mode") != "dp":
                data.pop("contributions", None)
            return get_access().approve(caller, slug, body.reason, protection_from(data))

        return out(run(act))

    @router.post("/projects/{slug}/reject", response_model=ProjectOut, summary="Reject")
    def reject(slug: str, body: DecisionIn, caller: Principal = caller_dependency) -> Any:
        return out(run(lambda: get_access().reject(caller, slug, body.reason)))

    @router.post("/projects/{slug}/suspend", response_model=ProjectOut, summary="Suspend")
    def suspend(slug: str, body: DecisionIn, caller: Principal = caller_dependency) -> Any:
        return out(run(lambda: get_access().suspend(caller, slug, body.reason)))

    @router.post("/projects/{slug}/reinstate", response_model=ProjectOut, summary="Reinstate")
    def reinstate(slug: str, body: DecisionIn, caller: Principal = caller_dependency) -> Any:
        return out(run(lambda: get_access().reinstate(caller, slug, body.reason)))

    return router
