"""What every change to a project leaves behind, in the same transaction as the change: a line
in the project's audit trail, the events other parties must hear (the outbox), and the public
:class:`Notice` the listeners hear once it is committed.

Kept apart from the workflow so that each decision is written down one way only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from confide.access import store as tables
from confide.access.context import Notice, new_id
from confide.access.model import Principal, Project, Role
from confide.events import outbox
from confide.events.types import Event, ProjectApplied, ProjectDecided

_DECISIONS = {
    "project_approved": "approved",
    "project_rejected": "rejected",
    "project_suspended": "suspended",
}


def record(
    conn: Connection,
    project: Project,
    kind: str,
    principal: Principal,
    role: Role,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Notice:
    """Append to the project's audit trail and put what other parties must hear of it in
    the outbox, in the caller's transaction; return the public notice for the listeners."""
    conn.execute(
        insert(tables.project_events).values(
            project_id=project.id,
            kind=kind,
            actor_id=principal.person_id,
            actor_role=role.value,
            at=now,
            detail=detail or {},
        )
    )
    outbox.write(conn, tables.outbox, project_events(project, kind, role, detail or {}))
    return Notice(
        kind,
        {
            "project": project.slug,
            "organisation": project.organisation,
            "organisation_name": project.organisation_name,
            "title": project.title,
            "purpose": project.purpose.value,
            "recipient_kind": project.recipient_kind.value,
            "legal_basis": project.legal_basis.value,
            "datasets": {table: list(columns) for table, columns in project.datasets.items()},
            "window_start": project.window_start.isoformat(),
            "window_end": project.window_end.isoformat(),
            "expires_on": project.expires_on.isoformat(),
            "actor_role": role.value,
            "at": now.isoformat(),
            **(detail or {}),
        },
    )


def record_refusal(conn: Connection, reason: str) -> None:
    """An application refused outright goes to the ledger without a project (none was made)."""
    outbox.write(
        conn,
        tables.outbox,
        [ProjectDecided(new_id(), "", "refused", Role.APPLICANT.value, reason)],
    )


def project_events(project: Project, kind: str, role: Role, detail: dict[str, Any]) -> list[Event]:
    """The events a project's change means for other parties (the ledger): an application, or
    a decision; submissions, single approvals and reinstatements stay in the audit trail."""
    if kind == "project_applied":
        return [
            ProjectApplied(
                new_id(),
                project.slug,
                project.organisation_name,
                project.title,
                project.purpose.value,
                project.recipient_kind.value,
                project.legal_basis.value,
                tuple(sorted(project.datasets)),
            )
        ]
    decision = _DECISIONS.get(kind)
    if decision is None:
        return []
    return [
        ProjectDecided(
            new_id(),
            project.slug,
            decision,
            role.value,
            str(detail.get("reason") or "") if decision != "approved" else "",
            project.expires_on.isoformat() if decision == "approved" else "",
        )
    ]
