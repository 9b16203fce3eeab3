"""The witness's HTTP API: ``POST /add-checkpoint`` as C2SP tlog-witness defines it.

``make_app(witness)`` is the whole service (``confide witness serve`` runs it); ``make_router``
lets a deployment mount it under a prefix of its own. The body is read up to the largest
request the protocol allows, and the witness's work runs in a worker thread, so a slow disk
never stalls the server's event loop.
"""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from confide.ledger.add_checkpoint import MAX_BODY, TEXT_TYPE
from confide.witness.service import Witness


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _TooLarge
    return bytes(body)


def make_router(witness: Witness) -> APIRouter:
    router = APIRouter(tags=["witness"])

    @router.post(
        "/add-checkpoint",
        summary="Cosign a checkpoint consistent with the last one cosigned",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Cosignature lines."},
            400: {"description": "Malformed, or an old size above the checkpoint's size."},
            403: {"description": "No signature by a key trusted for that origin."},
            404: {"description": "No log of that origin is watched."},
            409: {
                "content": {"text/x.tlog.size": {}},
                "description": "The old size is not the size last cosigned (the body is that "
                "size), or another tree of the same size was cosigned.",
            },
            413: {"description": "Larger than any add-checkpoint request."},
            422: {"description": "The consistency proof does not verify."},
        },
    )
    async def add_checkpoint(request: Request) -> Response:
        """An old size line, consistency proof lines, a blank line and the checkpoint note; the
        answer is the witness's timestamped cosignature (C2SP tlog-cosignature)."""
        try:
            body = await _read_body(request)
        except _TooLarge:
            return Response("The request is too large.\n", 413, media_type=TEXT_TYPE)
        reply = await run_in_threadpool(witness.respond, body)
        return Response(reply.body, reply.status, headers={"Content-Type": reply.content_type})

    return router


def make_app(witness: Witness) -> FastAPI:
    """The witness as a service of its own."""
    app = FastAPI(
        title="Confide witness",
        summary="Cosigns transparency log checkpoints (C2SP tlog-witness).",
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(make_router(witness))
    return app
