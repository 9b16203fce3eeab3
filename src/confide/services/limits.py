"""How much a caller may send a service: a request body is read only up to a bound.

The bound is checked before the signature (which needs the whole body), so an unauthenticated
caller cannot make a service hold more than this in memory: a declared length over it is
refused without reading, and a body streamed without one is refused as soon as it passes it.
"""

from __future__ import annotations

from starlette.requests import Request

from confide.common import settings

MAX_BODY_ENV = settings.SERVICE_MAX_BODY_MB.name
MAX_BODY_MB = 128


def max_body() -> int:
    """The largest request body a service reads, in bytes."""
    given = settings.value(settings.SERVICE_MAX_BODY_MB.name) or ""
    return (int(given) if given.isdigit() and int(given) > 0 else MAX_BODY_MB) * 1024 * 1024


async def bounded_body(request: Request, limit: int | None = None) -> bytes | None:
    """The request's body, or None when it is larger than ``limit`` (default :func:`max_body`)."""
    limit = max_body() if limit is None else limit
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
