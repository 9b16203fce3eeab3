"""The ledger's event intake as an HTTP service: other parties' relays post signed entries.

``POST /events`` takes ``{"items": [[key, kind, body], ...]}`` from an enrolled party and
appends each entry at most once (by key), exactly as the in-process ledger's ``append_once``.
Anything unsigned, tampered with, stale or replayed is refused with 401, and an entry of a
kind the sender does not record with 403; neither appends anything.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from confide.ledger.entries import EntryRejected
from confide.ledger.log import Ledger
from confide.services.limits import bounded_body
from confide.services.permissions import may_write
from confide.services.signing import RequestRefused, Verifier


def ledger_app(ledger: Ledger, verifier: Verifier) -> FastAPI:
    app = FastAPI(title="Confide ledger (event intake)", docs_url=None, redoc_url=None)

    @app.post("/events")
    async def events(request: Request) -> Any:
        body = await bounded_body(request)
        if body is None:
            return JSONResponse({"error": "The body is too large."}, status_code=413)
        try:
            caller = verifier.check("ledger", "POST", "/events", dict(request.headers), body)
        except RequestRefused as exc:
            return JSONResponse({"error": exc.message}, status_code=401)
        try:
            items = [(str(k), str(kind), dict(b)) for k, kind, b in orjson.loads(body)["items"]]
            if not may_write(caller, "append_once", [items], {}):
                message = f"The {caller} party may not record these entries."
                return JSONResponse({"error": message}, status_code=403)
            indices = ledger.append_once(items)
        except EntryRejected as exc:
            return JSONResponse({"error": exc.message}, status_code=422)
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
            return JSONResponse({"error": "The body is not a list of entries."}, status_code=422)
        return {"indices": indices}

    return app
