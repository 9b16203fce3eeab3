"""The SQL console of an approved project, a query's outcome, and released outputs' downloads.

Queries run through the TRE's ``QueryService.run`` (authorisation, checking, output checking,
the privacy budget and the ledger all happen there); the page shows the outcome with its
status, the reason for a hold or refusal, the labelled result and the budget left. Only
released outputs of the person's own organisation can be read or downloaded.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from confide.access.errors import Conflict
from confide.access.model import Principal
from confide.access.protection import ProtectionMode
from confide.common.errors import InvalidInput
from confide.tre.model import parse_bounds
from confide.tre.outcomes import QueryOutcome
from confide.tre.service import DEFAULT_EPSILON
from confide.web.forms import Form, error_summary, posted_form
from confide.web.pages.console_projects import applicant, own_project
from confide.web.pages.console_results import as_csv, as_json, result_table
from confide.web.pages.console_words import OUTPUT_STATUS, status_tag, when
from confide.web.pages.staff_context import StaffRoute, console, page, see_other

router = APIRouter(include_in_schema=False, route_class=StaffRoute)
SQL_MAX = 10_000
EPSILON_MAX = 10.0
BOUNDS_MAX = 2_000
MODE_WORDS = {
    "sdc": "Disclosure control: small cells suppressed, counts perturbed by the cell-key method",
    "dp": "Differential privacy: noisy numbers with intervals; spends the privacy budget",
}
STATUS_NEXT = {
    "released": "The output passed checking and is released: you can download it.",
    "held_for_review": "Two output checkers will review it independently. Come back to this "
    "page to see their decision.",
    "refused": "Nothing was released. Read the reason, change the query and run it again.",
}


def _console_page(
    request: Request,
    who: Principal,
    slug: str,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    staff = console(request)
    grant = staff.access.authorise_query(who, slug)  # only approved, unexpired projects
    project = own_project(request, who, grant.slug)
    context = {
        "project": project,
        "tables": {t: ", ".join(("patient_id", *c)) for t, c in grant.tables.items()},
        "budget": staff.queries.budget(who, grant.slug),
        "protection": grant.protection.describe(),
        "dp": grant.protection.mode is ProtectionMode.DP,
        "values": values,
        "field_errors": errors,
        "errors": error_summary(errors) or None,
    }
    return page(request, "staff-console.html", who, context, status_code)


@router.get("/staff/projects/{slug}/console")
def console_page(request: Request, slug: str, change: str = "") -> Response:
    """The console; ``?change=QUERY_ID`` starts from that query's SQL (a refused or held query
    is changed, not typed again). Only the organisation's own queries of this project."""
    who = applicant(request, "run queries")
    values = {"sql": "", "epsilon": str(DEFAULT_EPSILON), "bounds": "", "totals": ""}
    if change:
        past = console(request).queries.history(who, slug)
        earlier = next((q for q in past if q["id"] == change[:64]), None)
        if earlier is not None:
            values["sql"] = str(earlier["sql"])[:SQL_MAX]
    return _console_page(request, who, slug, values, {})


class _QueryForm(NamedTuple):
    """The console form read: its values (to show again), its field errors, and epsilon."""

    values: dict[str, str]
    errors: dict[str, str]
    epsilon: float | None


def _read_query(form: Form) -> _QueryForm:
    """The console form, read and checked."""
    values = {
        "sql": form.get("sql")[:SQL_MAX],
        "epsilon": form.get("epsilon")[:20],
        "bounds": form.get("bounds")[:BOUNDS_MAX],
        "totals": "yes" if form.get("totals") == "yes" else "",
    }
    errors: dict[str, str] = {}
    sql = form.get("sql")
    if not sql.strip():
        errors["sql"] = "Enter a SQL query"
    elif len(sql) > SQL_MAX:
        errors["sql"] = f"The query must be {SQL_MAX} characters or fewer"
    elif "\x00" in sql:
        errors["sql"] = "The query contains a character that cannot be part of SQL"
    if len(form.get("bounds")) > BOUNDS_MAX:
        errors["bounds"] = f"The bounds must be {BOUNDS_MAX} characters or fewer"
    else:
        try:
            parse_bounds(values["bounds"].splitlines())
        except InvalidInput as exc:
            errors["bounds"] = exc.message
    epsilon = None
    if values["epsilon"].strip():
        try:
            epsilon = float(values["epsilon"].strip())
        except ValueError:
            epsilon = math.nan
        if not (0 < epsilon <= EPSILON_MAX):  # also refuses NaN
            errors["epsilon"] = f"Epsilon must be a number above 0 and at most {EPSILON_MAX:g}"
    return _QueryForm(values, errors, epsilon)


@router.post("/staff/projects/{slug}/console")
def run_query(request: Request, slug: str, form: Form = Depends(posted_form)) -> Response:
    """Run the query through the TRE and show its outcome."""
    who = applicant(request, "run queries")
    values, errors, epsilon = _read_query(form)
    if errors:
        return _console_page(request, who, slug, values, errors, 422)
    staff = console(request)
    dp = staff.access.authorise_query(who, slug).protection.mode is ProtectionMode.DP
    try:
        outcome = staff.queries.run(
            who,
            slug,
            values["sql"],
            bounds=parse_bounds(values["bounds"].splitlines()),
            totals=bool(values["totals"]),
            epsilon=epsilon if dp else None,
        )
    except InvalidInput as exc:  # the service's own checks of the request
        return _console_page(request, who, slug, values, {"sql": exc.message}, 422)
    return see_other(f"/staff/queries/{outcome.id}")


def _outcome(request: Request, query_id: str) -> tuple[Principal, QueryOutcome]:
    who = applicant(request, "see your organisation's queries")
    return who, console(request).queries.show(who, query_id)


@router.get("/staff/queries/{query_id}")
def query_page(request: Request, query_id: str) -> Response:
    """The outcome: status, reason, the labelled result (once released), the budget left."""
    who, outcome = _outcome(request, query_id)
    past = console(request).queries.history(who, outcome.project)
    ran = next((q for q in past if q["id"] == outcome.id), None)
    context = {
        "outcome": outcome,
        "status": status_tag(outcome.status, OUTPUT_STATUS),
        "next": STATUS_NEXT.get(outcome.status, ""),
        "sql": ran["sql"] if ran else None,
        "definition": outcome.definition,
        "ran_at": when(ran["created_at"]) if ran else None,
        "mode": MODE_WORDS.get(outcome.mode, outcome.mode),
        "table": result_table(outcome.result) if outcome.result else None,
    }
    return page(request, "staff-query.html", who, context)


def _released(request: Request, query_id: str) -> QueryOutcome:
    _, outcome = _outcome(request, query_id)
    if outcome.status != "released" or outcome.result is None:
        raise Conflict(
            "Only released outputs can be downloaded, and this one has not been released.",
            hint="An output held for review can be downloaded once two checkers release it.",
        )
    return outcome


def _download(body: str, media: str, name: str) -> Response:
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/staff/queries/{query_id}/output.csv")
def download_csv(request: Request, query_id: str) -> Response:
    outcome = _released(request, query_id)
    name = f"confide-{outcome.project}-{outcome.id[:8]}.csv"
    return _download(as_csv(outcome.result or {}), "text/csv; charset=utf-8", name)


@router.get("/staff/queries/{query_id}/output.json")
def download_json(request: Request, query_id: str) -> Response:
    outcome = _released(request, query_id)
    name = f"confide-{outcome.project}-{outcome.id[:8]}.json"
    return _download(as_json(outcome.as_dict()), "application/json", name)
