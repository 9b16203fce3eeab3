"""What every staff console page shares: the parties, who is signed in, refusals as pages.

The browser's session cookie holds only opaque values (a sign-in challenge id and a session
token); who the person is, which organisation they act for and which roles they hold there
are read from the access party on every request. Every refusal a party raises becomes a page
with the matching HTTP status (403 for a missing role, 404 for anything of another
organisation, 409 for a state that does not allow it) and the party's own message.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from confide.access.errors import Conflict, Forbidden, Unauthenticated
from confide.access.model import Principal, Role
from confide.access.service import Access
from confide.access.signin import NotSignedIn, StaffSignIn, TooManySignIns
from confide.common.errors import ConfideError, InvalidInput, NotFound
from confide.tre.review import ReviewQueue
from confide.tre.service import QueryService
from confide.web.context import web_state
from confide.web.forms import BodyTooLarge
from confide.web.rendering import render
from confide.web.security import CsrfRefused

STAFF = "staff"  # key of the console in WebState.extra
TOKEN, CHALLENGE, STARTED = "staff_token", "staff_challenge", "staff_started"

ROLE_NAMES = {
    Role.APPLICANT: "applicant",
    Role.APPROVER: "approver",
    Role.OUTPUT_CHECKER: "output checker",
    Role.ADMINISTRATOR: "administrator",
    Role.OPERATOR: "operator",
}


@dataclass
class StaffConsole:
    """The parties the consoles act through (every action goes through their services)."""

    access: Access
    signin: StaffSignIn
    queries: QueryService
    review: ReviewQueue


class ChooseOrganisation(ConfideError):
    """Signed in, but no organisation chosen yet: the page sends the person to choose."""


def console(request: Request) -> StaffConsole:
    return web_state(request).extra[STAFF]


def principal(request: Request) -> Principal:
    """The signed-in person acting for their chosen organisation (NotSignedIn otherwise)."""
    found = console(request).signin.principal(request.session.get(TOKEN))
    if found is None:
        raise ChooseOrganisation("Choose the organisation you are acting for.")
    return found


def require(who: Principal, roles: Iterable[Role], doing: str, *, approving: bool = False) -> None:
    """Forbidden unless ``who`` holds one of ``roles`` (in an approving body if ``approving``)."""
    wanted = set(roles)
    if who.roles & wanted and (who.approving_body or not approving):
        return
    names = " or ".join(ROLE_NAMES[r] for r in sorted(wanted))
    where = "an approving body" if approving else who.organisation
    raise Forbidden(
        f"You need the {names} role in {where} to {doing}.",
        hint="Ask an administrator to grant the role, or sign in for another organisation.",
    )


def me(request: Request, who: Principal) -> dict[str, Any]:
    """What the staff navigation shows: the organisation, the roles, the links they open."""
    staff = console(request)
    org = staff.access.organisation(who.organisation)
    several = len(staff.signin.memberships(request.session.get(TOKEN))) > 1
    return {
        "organisation": org.name,
        "roles": sorted(ROLE_NAMES[r] for r in who.roles),
        "applicant": who.has(Role.APPLICANT),
        "approver": who.approving_body and bool(who.roles & {Role.APPROVER, Role.ADMINISTRATOR}),
        "checker": who.approving_body and who.has(Role.OUTPUT_CHECKER),
        "several": several,
    }


def page(
    request: Request,
    template: str,
    who: Principal | None,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """A staff page: the staff navigation plus ``context``."""
    values = {"nav": "staff", "me": me(request, who) if who else None, **(context or {})}
    return render(request, template, values, status_code=status_code)


_REFUSALS: tuple[tuple[type[ConfideError], int, str], ...] = (
    (CsrfRefused, 403, "This form could not be accepted"),
    (BodyTooLarge, 413, "What was sent is too large"),
    (TooManySignIns, 429, "Too many attempts"),
    (Unauthenticated, 401, "Sign in to continue"),
    (Forbidden, 403, "You cannot do this"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "This cannot be done now"),
    (InvalidInput, 422, "There is a problem with what was sent"),
)


def refusal_page(request: Request, exc: ConfideError) -> Response:
    """The party's refusal as a page with the matching status; nothing was changed."""
    if isinstance(exc, ChooseOrganisation):
        return RedirectResponse("/staff/organisation", status_code=303)
    status, title = next(
        ((code, words) for kind, code, words in _REFUSALS if isinstance(exc, kind)),
        (422, "There is a problem"),
    )
    if isinstance(exc, NotSignedIn):
        for key in (TOKEN, CHALLENGE, STARTED):
            request.session.pop(key, None)
    who = None
    if status in (403, 404, 409, 422):
        try:
            who = principal(request)
        except ConfideError:
            who = None
    context = {"title": title, "message": exc.message, "hint": exc.hint, "status": status}
    return page(request, "staff-problem.html", who, context, status_code=status)


class StaffRoute(APIRoute):
    """A route whose refusals (any ConfideError) become staff pages, not the patient's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ConfideError as exc:
                return refusal_page(request, exc)

        return guarded


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)
