"""The roll-out's pages: the public roll-out page (``/rollout``) and the operators' pause page
(``/staff/rollout``), with the roll-out's HTTP API. ``include_rollout`` wires all three.

The public page shows switches and counts only. The pause page acts through the same
:class:`~confide.rollout.service.Rollout` as the CLI and the API, for signed-in staff holding
the operator role; every change goes into the transparency log with its reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from confide.access.model import Role
from confide.access.service import Access
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.composition import open_rollout
from confide.rollout.api import make_router, require_operator
from confide.rollout.figures import public_figures
from confide.rollout.service import LedgerPort, Rollout
from confide.web.context import web_state
from confide.web.forms import Form, error_summary, posted_form
from confide.web.pages.staff_context import StaffRoute, page, principal, see_other
from confide.web.rendering import render

HOME = "rollout_home"  # key in WebState.extra
public = APIRouter(include_in_schema=False)
staff = APIRouter(prefix="/staff/rollout", include_in_schema=False, route_class=StaffRoute)
STATUS_WORDS = {
    "live": "Live",
    "waiting": "Starts later",
    "paused": "Paused",
    "declined": "Declined",
}


def include_rollout(app: FastAPI, home: Home, ledger: LedgerPort, access: Access) -> None:
    """Mount the roll-out's API and pages over ``home``'s roll-out store."""
    app.state.confide.extra[HOME] = (home, ledger)
    app.include_router(make_router(home, ledger, access))
    app.include_router(public)
    app.include_router(staff)


def _open(request: Request) -> Rollout:
    home, ledger = web_state(request).extra[HOME]
    return open_rollout(home, ledger)


def _figures(request: Request) -> dict[str, Any]:
    rollout = _open(request)
    try:
        return public_figures(rollout.store)
    finally:
        rollout.close()


@public.get("/rollout")
def rollout_page(request: Request) -> Response:
    """Which practices and areas are live, paused or declined; notices and held-back counts."""
    figures = _figures(request)
    return render(request, "rollout.html", {"nav": "rollout", "f": figures, "words": STATUS_WORDS})


def _operator(request: Request):
    who = principal(request)
    require_operator(who)
    return who


def _pause_page(
    request: Request, who: Any, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    context = {
        "f": _figures(request),
        "words": STATUS_WORDS,
        "field_errors": errors or {},
        "errors": error_summary(errors or {}),
    }
    return page(request, "staff-rollout.html", who, context, status_code=status)


@staff.get("")
def pause_page(request: Request) -> Response:
    return _pause_page(request, _operator(request))


@staff.post("")
def pause_submit(request: Request, form: Form = Depends(posted_form)) -> Response:
    """Pause or resume nationally, with a reason (operators only)."""
    who = _operator(request)
    action = form.get("action")
    rollout = _open(request)
    try:
        if action == "pause":
            rollout.pause(form.get("reason")[:500], role=Role.OPERATOR.value)
        elif action == "resume":
            rollout.resume(form.get("reason")[:500], role=Role.OPERATOR.value)
        else:
            raise InvalidInput("Choose pause or resume.")
    except InvalidInput as exc:
        return _pause_page(request, who, {"reason": exc.message}, 422)
    finally:
        rollout.close()
    return see_other("/staff/rollout")
