"""Middleware that holds whatever a route does: body limits, trusted proxies, no caching.

- ``BodyLimit``: every request body is counted as it streams in. A declared length over the
  route's limit is refused with 413 before anything is read; a body that grows past it is
  cut off at the limit and answered with 413, whatever the handler was doing with it. So a
  300 MB POST costs the server at most the limit, on every route, HTML or API.
- ``TrustedProxies``: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when
  the connection comes from a proxy configured by address; otherwise they are dropped before
  any handler sees them. The throttle counts against the address this decides.
- ``PrivateByDefault``: every response but the static assets says ``Cache-Control: no-store``
  (unless a route set its own), and a redirect never carries a host: the framework builds
  trailing-slash redirects from the request's Host header, which an attacker chooses.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import MutableHeaders

from confide.common import postcode
from confide.ledger.entries import find_identifiers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_LIMIT = 64 * 1024  # larger than any form or JSON body Confide accepts
TOO_LARGE = "What was sent is too large, so it was not read. Nothing was changed."
ASSETS = "/assets/"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


class BodyLimit:
    """Refuse bodies over a limit (per path prefix, longest match first) with 413."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        page: Callable[[], bytes],
        default: int = DEFAULT_BODY_LIMIT,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.page = page
        self.default = default
        self.limits = sorted((limits or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        return next((n for prefix, n in self.limits if path.startswith(prefix)), self.default)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if scope["path"].startswith("/api/"):
            body = json.dumps({"detail": {"error": TOO_LARGE}}).encode()
            media = b"application/json"
        else:
            body, media = self.page(), b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", media),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send)
            return
        seen = 0
        exceeded = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True  # the handler sees the client leave: nothing more is read
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if not exceeded:
                await send(message)
            elif not refused:  # whatever the handler answered, the answer is 413
                refused = True
                await self._refuse(scope, send)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not refused:
            await self._refuse(scope, send)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """Proxy addresses or networks as configured (``10.0.0.5``, ``10.0.0.0/24``)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


class TrustedProxies:
    """Believe forwarding headers only from the configured proxies, and drop them otherwise."""

    FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded")

    def __init__(self, app: ASGIApp, *, proxies: Iterable[str] = ()) -> None:
        self.app = app
        self.proxies = parse_proxies(proxies)

    def trusted(self, host: str | None) -> bool:
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in net for net in self.proxies)

    def _client(self, peer: str, forwarded_for: bytes) -> str:
        """The nearest address in the chain that is not one of our proxies."""
        hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # not an address: believe nothing after it
        return hops[0] if hops else peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        peer = (scope.get("client") or ("", 0))[0]
        headers = scope.get("headers", [])
        if self.trusted(peer):
            forwarded_for = _header(scope, b"x-forwarded-for")
            if forwarded_for:
                scope["client"] = (self._client(peer, forwarded_for), 0)
            proto = _header(scope, b"x-forwarded-proto")
            if proto in (b"http", b"https"):
                scope["scheme"] = proto.decode()
        scope["headers"] = [(k, v) for k, v in headers if k.lower() not in self.FORWARDED]
        await self.app(scope, receive, send)


class PrivateByDefault:
    """``Cache-Control: no-store`` on everything but assets; redirects never name a host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        public_asset = scope["path"].startswith(ASSETS)

        async def private_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not public_asset and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                location = headers.get("location")
                if location is not None:
                    headers["location"] = local_location(location)
            await send(message)

        await self.app(scope, receive, private_send)


def local_location(location: str) -> str:
    """A redirect target reduced to path and query: never another site (``//evil``)."""
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, ""))


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")


def _plain_name(part: object) -> bool:
    text = str(part)
    if not _FIELD_NAME.match(text) or find_identifiers(text):
        return False
    return postcode.normalise(text) is None


def quiet_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors that say where and what, never what was sent: no ``input``, no
    ``ctx``, and any place named by a key the client chose (which may be an NHS number) shown
    as ``"…"``."""
    quiet = []
    for error in errors:
        loc = [p if isinstance(p, int) or _plain_name(p) else "…" for p in error.get("loc", ())]
        quiet.append({"loc": loc, "msg": str(error.get("msg", "")), "type": error.get("type", "")})
    return quiet
