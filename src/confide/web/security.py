"""The web app's defences: signed sessions, CSRF tokens, security headers, safe failures.

- Sessions live in a signed cookie (Starlette's ``SessionMiddleware``, itsdangerous) that is
  ``Secure``, ``HttpOnly`` and ``SameSite=Strict``, under a key made on first use in
  ``<home>/web/session.key``. The cookie holds only opaque values (a CSRF token, the identity
  check's challenge id and session token): never an NHS number or any other identifier.
- Every form carries a CSRF token bound to the session and checked in constant time.
- Every response gets a strict Content Security Policy (no inline scripts or styles), no
  framing, no referrer, no sniffing; HSTS when served over HTTPS; HTML is never cached.
- An unexpected failure answers with a generic page and logs only the exception's type: the
  message of a database error, say, could carry an identifier.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request

from confide.common import exit_codes
from confide.common.errors import ConfideError
from confide.common.secrets import load_or_create

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("confide.web")

SESSION_COOKIE = "confide_session"
SESSION_MAX_AGE = 60 * 60  # seconds; the identity session inside expires sooner
CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
HSTS = "max-age=63072000; includeSubDomains"


class CsrfRefused(ConfideError):
    """A form arrived without this session's CSRF token: nothing was done."""

    exit_code = exit_codes.FORBIDDEN


def session_secret(web_folder: Path) -> str:
    """The session-signing key, made on first use (owner-only file)."""
    key = load_or_create(web_folder / "session.key", lambda: secrets.token_bytes(32))
    return key.hex()


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def rotate_csrf(request: Request) -> None:
    """A new CSRF token at every sign-in and sign-out, so a token learnt before cannot be used
    against the signed-in session (token fixation)."""
    request.session[CSRF_FIELD] = secrets.token_urlsafe(32)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form whose token is missing or not this session's (constant-time compare)."""
    expected = request.session.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not submitted
        or not hmac.compare_digest(expected.encode(), submitted.encode())
    ):
        raise CsrfRefused(
            "This form could not be accepted because it did not come from this website's "
            "own page, or your session had ended. Nothing was changed.",
            hint="Go back to the page, reload it and send the form again.",
        )


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if https:
                    headers["Strict-Transport-Security"] = HSTS
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SafeErrors:
    """ASGI middleware: an unexpected exception becomes a plain 500 page, logged by type only.

    It sits inside Starlette's outermost error middleware, which would otherwise re-raise the
    exception for the server to log with its message and traceback.
    """

    def __init__(self, app: ASGIApp, page: Callable[[], bytes]) -> None:
        self.app = app
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unexpected %s while serving a request", type(exc).__name__)
            if started:
                return
            body = self.page()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
