"""The output checkers' console: held outputs, blind independent review, votes with reasons.

The TRE's ``ReviewQueue`` makes every rule (only output checkers of an approving body, never
their own organisation's outputs, one vote each, blind until decided, two approvals release,
one rejection refuses) and records the decision in the ledger. A checker sees how many votes
are in and their own vote, never the other checker's, until the output is decided.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from confide.access.errors import Conflict, Forbidden
from confide.access.model import Principal, Role
from confide.common.errors import InvalidInput
from confide.web.forms import Form, error_summary, posted_form
from confide.web.pages.console_approvals import read_decision
from confide.web.pages.console_results import result_table
from confide.web.pages.console_words import OUTPUT_STATUS, status_tag, when
from confide.web.pages.staff_context import (
    StaffRoute,
    console,
    page,
    principal,
    require,
    see_other,
)

router = APIRouter(prefix="/staff/reviews", include_in_schema=False, route_class=StaffRoute)
VOTES = {"approve": "Approve: safe to release", "reject": "Reject: do not release"}


def checker(request: Request) -> Principal:
    who = principal(request)
    require(who, [Role.OUTPUT_CHECKER], "review outputs", approving=True)
    return who


def _vote_words(vote: dict[str, Any] | None) -> dict[str, str] | None:
    if vote is None:
        return None
    return {
        "decision": "Approve" if vote["approve"] else "Reject",
        "reason": str(vote["reason"]),
        "when": when(vote["at"]),
    }


@router.get("")
def queue(request: Request) -> Response:
    """Outputs held for review that this checker may review."""
    who = checker(request)
    items = [
        {
            "id": item["id"],
            "project": item["project"],
            "votes": f"{item['votes_in']} of {item['votes_needed']}",
            "voted": item["your_vote"] is not None,
        }
        for item in console(request).review.queue(who)
    ]
    return page(request, "staff-reviews.html", who, {"items": items})


def _review_page(
    request: Request,
    who: Principal,
    query_id: str,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    item = console(request).review.item(who, query_id)
    errors = errors or {}
    context = {
        "item": item,
        "status": status_tag(item["status"], OUTPUT_STATUS),
        "table": result_table(item["output"]) if item.get("output") else None,
        "your_vote": _vote_words(item["your_vote"]),
        "votes": [_vote_words(v) for v in item.get("votes", [])],
        "can_vote": item["status"] == "held_for_review" and item["your_vote"] is None,
        "choices": VOTES,
        "values": values or {},
        "field_errors": errors,
        "errors": error_summary(errors) or None,
    }
    return page(request, "staff-review.html", who, context, status_code)


@router.get("/{query_id}")
def review(request: Request, query_id: str) -> Response:
    who = checker(request)
    return _review_page(request, who, query_id)


@router.post("/{query_id}/vote")
def vote(request: Request, query_id: str, form: Form = Depends(posted_form)) -> Response:
    """Record this checker's vote; the queue decides once the votes allow."""
    who = checker(request)
    values, errors, reason = read_decision(form, "vote", VOTES, "Choose approve or reject")
    if errors:
        return _review_page(request, who, query_id, errors, values, 422)
    try:
        console(request).review.vote(who, query_id, values["vote"] == "approve", reason)
    except (Forbidden, Conflict, InvalidInput) as exc:
        code = 403 if isinstance(exc, Forbidden) else 409 if isinstance(exc, Conflict) else 422
        return _review_page(request, who, query_id, {"vote": exc.message}, values, code)
    return see_other(f"/staff/reviews/{query_id}")
