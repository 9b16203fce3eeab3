"""The approving body's console: the queue of submitted applications, an application with its
history, approve or reject with a reason, and (administrators) suspend or reinstate.

The access party makes every rule (nobody decides their own application or one of their own
organisation; one decision each; reasons required) and records every decision for the
ledger; its refusals are shown on the application's page as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from confide.access.errors import Conflict, Forbidden
from confide.access.model import Principal, Project, Role
from confide.access.protection import OutputProtection, protection_from
from confide.access.public_text import public_text
from confide.common.errors import InvalidInput
from confide.web.forms import Form, error_summary, posted_form
from confide.web.labels import PURPOSES
from confide.web.pages.console_words import (
    PROJECT_STATUS,
    history_rows,
    named,
    project_rows,
    status_tag,
    when,
)
from confide.web.pages.staff_context import (
    StaffRoute,
    console,
    page,
    principal,
    require,
    see_other,
)

router = APIRouter(prefix="/staff/applications", include_in_schema=False, route_class=StaffRoute)
REASON_MAX = 2000
DECISIONS = {"approve": "Approve", "reject": "Reject"}
OVERSIGHT = {"suspend": "Suspend the project", "reinstate": "Reinstate the project"}
OVERSIGHT_FIELD = "oversight-reason"


def reviewer(request: Request) -> Principal:
    who = principal(request)
    require(who, [Role.APPROVER, Role.ADMINISTRATOR], "see and decide applications", approving=True)
    return who


def _row(project: Project) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "title": project.title,
        "organisation": project.organisation_name,
        "purpose": named(PURPOSES, project.purpose.value),
        "status": status_tag(project.status.value, PROJECT_STATUS),
        "updated": when(project.updated_at),
    }


@router.get("")
def queue(request: Request) -> Response:
    """Applications waiting for a decision; for administrators, projects they oversee."""
    who = reviewer(request)
    visible = [
        p for p in console(request).access.projects(who) if p.organisation_id != who.organisation_id
    ]
    waiting = [_row(p) for p in visible if p.status.value == "submitted"]
    overseen = [_row(p) for p in visible if p.status.value in ("approved", "suspended")]
    context = {
        "waiting": waiting,
        "overseen": overseen if who.has(Role.ADMINISTRATOR) else None,
    }
    return page(request, "staff-applications.html", who, context)


def _application_page(
    request: Request,
    who: Principal,
    slug: str,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    staff = console(request)
    project = staff.access.project(who, slug)
    status = project.status.value
    errors = errors or {}
    context = {
        "project": project,
        "rows": project_rows(project),
        "status": status_tag(status, PROJECT_STATUS),
        "history": history_rows(staff.access.history(who, project.slug)),
        "can_decide": status == "submitted" and who.has(Role.APPROVER),
        "oversight": (
            ("suspend" if status == "approved" else "reinstate")
            if who.has(Role.ADMINISTRATOR) and status in ("approved", "suspended")
            else None
        ),
        "decisions": DECISIONS,
        "protections": PROTECTIONS,
        "oversight_words": OVERSIGHT,
        "values": values or {},
        "field_errors": errors,
        "errors": error_summary(errors) or None,
    }
    return page(request, "staff-application.html", who, context, status_code)


@router.get("/{slug}")
def application(request: Request, slug: str) -> Response:
    who = reviewer(request)
    return _application_page(request, who, slug)


def decision_reason(raw: str) -> str:
    text = public_text(raw, what="The reason", limit=REASON_MAX, multiline=True)
    if not text:
        raise InvalidInput("Enter the reason for the decision. It is published: name nobody.")
    return text


def read_decision(
    form: Any, field: str, options: Any, wrong: str
) -> tuple[dict[str, str], dict[str, str], str]:
    """A form's one choice among ``options`` and its published reason: the values to show
    again, the errors by field, and the checked reason (empty when there are errors)."""
    values = {field: form.get(field)[:20], "reason": form.get("reason")[:REASON_MAX]}
    errors: dict[str, str] = {}
    if len(form.all(field)) != 1 or values[field] not in options:
        errors[field] = wrong
    reason = ""
    try:
        reason = decision_reason(form.get("reason"))
    except InvalidInput as exc:
        errors["reason"] = exc.message
    return values, errors, reason


@router.post("/{slug}/decision")
def decide(request: Request, slug: str, form: Form = Depends(posted_form)) -> Response:
    """Approve or reject, with a reason (the access party checks who may)."""
    who = reviewer(request)
    values, errors, reason = read_decision(form, "decision", DECISIONS, "Choose approve or reject")
    if errors:
        return _application_page(request, who, slug, errors, values, 422)
    access = console(request).access
    try:
        if values["decision"] == "approve":
            protection = _protection(form)
            values.update(_protection_values(form))
            project = access.approve(who, slug, reason, protection)
        else:
            project = access.reject(who, slug, reason)
    except InvalidInput as exc:
        values.update(_protection_values(form))
        return _application_page(request, who, slug, {"protection": exc.message}, values, 422)
    except (Forbidden, Conflict) as exc:
        code = 403 if isinstance(exc, Forbidden) else 409
        return _application_page(request, who, slug, {"decision": exc.message}, values, code)
    return see_other(f"/staff/applications/{project.slug}")


PROTECTIONS = {
    "sdc-acro": "Disclosure control, ACRO's rules (threshold 10, dominance rules, perturbation)",
    "sdc-opensafely": "Disclosure control, OpenSAFELY's rules (7 or fewer hidden, round to 5)",
    "dp": "Differential privacy, with the budget and bound below",
}


def _protection_values(form: Any) -> dict[str, str]:
    return {
        "protection": form.get("protection")[:20],
        "epsilon_total": form.get("epsilon_total")[:20],
        "contributions": form.get("contributions")[:6],
    }


def _protection(form: Any) -> OutputProtection:
    """The approver's choice of how the project's outputs are protected."""
    chosen = form.get("protection") or "sdc-acro"
    if len(form.all("protection")) > 1 or chosen not in PROTECTIONS:
        raise InvalidInput("Choose how the project's outputs are protected")
    if chosen != "dp":
        return protection_from({"mode": "sdc", "rules": chosen.removeprefix("sdc-")})
    try:
        total = float(form.get("epsilon_total").strip())
        contributions = int(form.get("contributions").strip() or "1")
    except ValueError:
        raise InvalidInput(
            "Enter the privacy budget as a number (for example 3) and the cells one person "
            "may count in as a whole number"
        ) from None
    return protection_from({"mode": "dp", "epsilon_total": total, "contributions": contributions})


@router.post("/{slug}/oversight")
def oversee(request: Request, slug: str, form: Form = Depends(posted_form)) -> Response:
    """Suspend an approved project or reinstate a suspended one (administrators)."""
    who = reviewer(request)
    values = {"action": form.get("action")[:20], "oversight_reason": form.get("reason")[:2000]}
    errors: dict[str, str] = {}
    try:
        reason = decision_reason(form.get("reason"))
    except InvalidInput as exc:
        errors[OVERSIGHT_FIELD] = exc.message
    if len(form.all("action")) != 1 or values["action"] not in OVERSIGHT:
        errors[OVERSIGHT_FIELD] = "Use the suspend or reinstate button on the page"
    if errors:
        return _application_page(request, who, slug, errors, values, 422)
    access = console(request).access
    act = access.suspend if values["action"] == "suspend" else access.reinstate
    try:
        project = act(who, slug, reason)
    except (Forbidden, Conflict) as exc:
        code = 403 if isinstance(exc, Forbidden) else 409
        return _application_page(request, who, slug, {OVERSIGHT_FIELD: exc.message}, values, code)
    return see_other(f"/staff/applications/{project.slug}")
