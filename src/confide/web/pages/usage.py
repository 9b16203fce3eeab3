"""'How your data has been used': the usage report of a patient who passed the identity check.

The page never works out the report itself. It hands the NHS number behind the session (read
from the identity service, never from the request) to the usage source the app was built with,
which runs at the choices and pseudonymiser side, and shows the report it gets back. Nothing
about the person goes into a URL: both the page and its JSON download have fixed addresses.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from confide.usage.report import UsageReport
from confide.web.context import web_state
from confide.web.pages.patient import _actor, _ended, _signed_in
from confide.web.rendering import render
from confide.web.usage_view import describe

router = APIRouter(include_in_schema=False)

UsageSource = Callable[[str], UsageReport]
"""A verified NHS number in, that person's usage report out."""

SOURCE = "usage"  # the key of the usage source in ``WebState.extra``
PATH = "/your-data-use"


def _source(request: Request) -> UsageSource | None:
    return web_state(request).extra.get(SOURCE)


def _unavailable(request: Request) -> Response:
    return render(request, "usage-unavailable.html", {"nav": "patient"})


@router.get(PATH)
def usage_page(request: Request) -> Response:
    """The report as a page: releases that used the data, those that left it out, the
    person's own choice changes, and every proof."""
    source = _source(request)
    if source is None:
        return _unavailable(request)
    number = _signed_in(request)
    if number is None:
        return _ended(request)
    shown = describe(source(number))
    return render(request, "usage.html", {"nav": "patient", "actor": _actor(request), **shown})


@router.get(PATH + ".json")
def usage_json(request: Request) -> Response:
    """The same report with its proofs as JSON, to check with any RFC 6962 tool."""
    source = _source(request)
    if source is None:
        return _unavailable(request)
    number = _signed_in(request)
    if number is None:
        return _ended(request)
    body = orjson.dumps(source(number).as_dict(), option=orjson.OPT_INDENT_2)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="confide-my-data-use.json"',
            "Cache-Control": "no-store",
        },
    )
