"""The demo's outbox: the messages a real service would send by text or email.

Mounted only when the app runs as a demo; it shows one-time codes, so it must never be
reachable in a real deployment.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from confide.web.context import web_state
from confide.web.rendering import render

router = APIRouter(include_in_schema=False)
SHOWN = 10


@router.get("/demo/outbox")
def outbox(request: Request) -> Response:
    folder = web_state(request).outbox
    files = sorted(folder.glob("*.json"), reverse=True)[:SHOWN] if folder.is_dir() else []
    messages = []
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        messages.append({"to": str(data.get("to", "")), "text": str(data.get("text", ""))})
    return render(request, "demo-outbox.html", {"messages": messages})
