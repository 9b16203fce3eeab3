"""The researcher's projects: the organisation's list, the application form, a project's page
with its decision history, and submitting a draft for a decision.

Everything goes through the access party (which checks roles, tenancy and state, and tells
the ledger); a project of another organisation is "not found", exactly as the API says.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from confide.access.errors import Forbidden, project_not_found
from confide.access.model import LegalBasis, Principal, Project, RecipientKind, Role
from confide.common.errors import InvalidInput
from confide.web.forms import LONG_FORM_FIELDS, Form, posted_form, posted_long_form
from confide.web.labels import DATASETS, LEGAL_BASES, PURPOSES, RECIPIENTS, label
from confide.web.pages.console_application_form import (
    DATES,
    dataset_columns,
    error_list,
    field_of,
    read_application,
)
from confide.web.pages.console_application_form import (
    PURPOSES as OPEN_PURPOSES,
)
from confide.web.pages.console_words import (
    OUTPUT_STATUS,
    PROJECT_NEXT,
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

router = APIRouter(prefix="/staff/projects", include_in_schema=False, route_class=StaffRoute)
FORM_FIELDS = LONG_FORM_FIELDS


def applicant(request: Request, doing: str) -> Principal:
    who = principal(request)
    require(who, [Role.APPLICANT], doing)
    return who


def own_project(request: Request, who: Principal, slug: str) -> Project:
    """The project, if it is this organisation's (another's is "not found")."""
    project = console(request).access.project(who, slug)
    if project.organisation_id != who.organisation_id:
        raise project_not_found()
    return project


@router.get("")
def projects(request: Request) -> Response:
    """The organisation's projects with their status."""
    who = applicant(request, "see your organisation's projects")
    rows = [
        {
            "slug": p.slug,
            "title": p.title,
            "purpose": named(PURPOSES, p.purpose.value),
            "status": status_tag(p.status.value, PROJECT_STATUS),
            "updated": when(p.updated_at),
        }
        for p in console(request).access.projects(who)
        if p.organisation_id == who.organisation_id
    ]
    return page(request, "staff-projects.html", who, {"projects": rows})


def _form_page(
    request: Request,
    who: Principal,
    values: dict,
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    kind = console(request).access.organisation(who.organisation).kind.value
    tables: list[dict[str, Any]] = [
        {
            "name": table,
            "label": label(DATASETS, table),
            "items": [
                {
                    "value": f"{table}.{column}",
                    "text": column.replace("_", " "),
                    "id": f"col-{table}-{column}",
                    "checked": f"{table}.{column}" in values.get("columns", set()),
                }
                for column in columns
            ],
        }
        for table, columns in dataset_columns().items()
    ]
    if tables:
        tables[0]["items"][0]["id"] = "datasets"  # where the error summary links
    context = {
        "values": values,
        "field_errors": errors,
        "errors": error_list(errors) if errors else None,
        "purposes": [(p.value, named(PURPOSES, p.value)) for p in OPEN_PURPOSES],
        "recipients": [(k.value, named(RECIPIENTS, k.value)) for k in RecipientKind],
        "organisation_kind": kind,
        "bases": [(b.value, named(LEGAL_BASES, b.value)) for b in LegalBasis],
        "tables": tables,
        "dates": DATES,
    }
    return page(request, "staff-apply.html", who, context, status_code)


@router.get("/new")
def apply_page(request: Request) -> Response:
    who = applicant(request, "apply for projects")
    today = console(request).access.clock().date()
    ahead = today + timedelta(days=365)
    values = {
        "recipient_kind": console(request).access.organisation(who.organisation).kind.value,
        "expires_on[day]": str(ahead.day),
        "expires_on[month]": str(ahead.month),
        "expires_on[year]": str(ahead.year),
    }
    return _form_page(request, who, values, {})


@router.post("/new")
def apply(request: Request, form: Form = Depends(posted_long_form)) -> Response:
    """Save the application as a draft (the access party checks it and records it)."""
    who = applicant(request, "apply for projects")
    read = read_application(form)
    if read.application is None:
        return _form_page(request, who, read.values, read.errors, 422)
    try:
        project = console(request).access.apply(who, read.application)
    except (InvalidInput, Forbidden) as exc:  # the rules refused these terms (recorded)
        message = exc.message + (f" {exc.hint}" if exc.hint else "")
        return _form_page(request, who, read.values, {field_of(exc.message): message}, 422)
    return see_other(f"/staff/projects/{project.slug}")


@router.get("/{slug}")
def project_page(request: Request, slug: str) -> Response:
    """The application, its status and decision history; for an approved project, its
    privacy budget and recent queries."""
    who = applicant(request, "see your organisation's projects")
    staff = console(request)
    project = own_project(request, who, slug)
    status = project.status.value
    context = {
        "project": project,
        "rows": project_rows(project),
        "status": status_tag(status, PROJECT_STATUS),
        "next": PROJECT_NEXT.get(status, ""),
        "history": history_rows(staff.access.history(who, project.slug)),
        "draft": status == "draft",
        "approved": status == "approved",
        "queries": [],
        "budget": None,
    }
    if status in ("approved", "suspended", "expired"):
        context["budget"] = staff.queries.budget(who, project.slug)
        context["queries"] = [
            {**q, "when": when(q["created_at"]), "tag": status_tag(q["status"], OUTPUT_STATUS)}
            for q in staff.queries.history(who, project.slug)
        ]
    return page(request, "staff-project.html", who, context)


@router.post("/{slug}/submit")
def submit(request: Request, slug: str, _form: Form = Depends(posted_form)) -> Response:
    """Send the draft to the approving body."""
    who = applicant(request, "submit your organisation's applications")
    project = own_project(request, who, slug)
    console(request).access.submit(who, project.slug)
    return see_other(f"/staff/projects/{project.slug}")
