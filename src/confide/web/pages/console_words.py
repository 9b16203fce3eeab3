"""The consoles' plain words for statuses, decisions and project terms (one place to change)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from confide.access.model import Project
from confide.web.labels import DATASETS, LEGAL_BASES, PURPOSES, RECIPIENTS, label

# status → (words, NHS.UK tag colour)
PROJECT_STATUS = {
    "draft": ("Draft", "grey"),
    "submitted": ("Waiting for a decision", "blue"),
    "approved": ("Approved", "green"),
    "rejected": ("Rejected", "red"),
    "suspended": ("Suspended", "orange"),
    "expired": ("Expired", "grey"),
}
OUTPUT_STATUS = {
    "released": ("Released", "green"),
    "held_for_review": ("Held for review", "yellow"),
    "refused": ("Refused", "red"),
    "running": ("Running", "grey"),
}
EVENTS = {
    "project_applied": "Application saved as a draft",
    "project_submitted": "Submitted for a decision",
    "project_approval_recorded": "An approver approved (more approvals needed)",
    "project_approved": "Approved",
    "project_rejected": "Rejected",
    "project_suspended": "Suspended",
    "project_reinstated": "Reinstated",
}
ROLES = {
    "applicant": "applicant",
    "approver": "approver",
    "output_checker": "output checker",
    "administrator": "administrator",
    "operator": "operator",
}
PROJECT_NEXT = {
    "draft": "Check the application, then submit it for a decision.",
    "submitted": "The approving body will decide. You will see the decision and its reason here.",
    "approved": "You can run queries in the SQL console.",
    "rejected": "A rejected application cannot be changed. Apply again with a new application.",
    "suspended": "A suspended project can do nothing until an administrator reinstates it.",
    "expired": "An expired project can do nothing. Apply again to continue the work.",
}


def named(names: dict[str, str], code: str) -> str:
    """A code's plain name, starting with a capital (``direct_care_audit`` has none listed)."""
    text = label(names, code)
    return text[:1].upper() + text[1:]


def status_tag(status: str, table: dict[str, tuple[str, str]]) -> dict[str, str]:
    words, colour = table.get(status, (status.replace("_", " ").capitalize(), "grey"))
    return {"text": words, "classes": f"nhsuk-tag--{colour}"}


def when(value: Any) -> str:
    """A date or time as people read it (UTC for times)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return f"{value:%d %B %Y at %H:%M} UTC"
    if isinstance(value, date):
        return f"{value:%d %B %Y}"
    return str(value)


def history_rows(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The project's audit trail as the organisation sees it: what, who (by role), why."""
    return [
        {
            "what": EVENTS.get(e["kind"], e["kind"].replace("_", " ")),
            "who": ROLES.get(e.get("actor_role") or "", "the service"),
            "when": when(e["at"]),
            "reason": str(e.get("reason") or ""),
        }
        for e in events
    ]


def project_rows(project: Project) -> list[dict[str, Any]]:
    """The application's terms for a summary list."""
    data = "; ".join(
        f"{label(DATASETS, table)}: {', '.join(columns)}"
        for table, columns in project.datasets.items()
    )
    pairs = [
        ("Short name", project.slug),
        ("Organisation", project.organisation_name),
        ("Purpose", named(PURPOSES, project.purpose.value)),
        ("Recipient", named(RECIPIENTS, project.recipient_kind.value)),
        ("Legal basis", named(LEGAL_BASES, project.legal_basis.value)),
        ("Data requested", data),
        ("Date window", f"{when(project.window_start)} to {when(project.window_end)}"),
        ("Expires", when(project.expires_on)),
        ("Description", project.summary or "None given"),
    ]
    if project.status.value in ("approved", "suspended", "expired"):
        pairs.append(("How outputs are protected", project.protection.describe()))
    return [{"key": {"text": k}, "value": {"text": v}} for k, v in pairs]
