"""Reading projects under the visibility rule, and their audit trails.

Kept in one place so the rule cannot drift between callers: a caller sees their own
organisation's projects, reviewers of an approving body also see submitted ones, and anything
else is answered exactly like a name nobody uses ("no such project").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, or_, select

from confide.access import rules
from confide.access import store as tables
from confide.access.checks import is_reviewer, require_member
from confide.access.context import Context
from confide.access.errors import project_not_found
from confide.access.model import (
    LegalBasis,
    Principal,
    Project,
    ProjectStatus,
    Purpose,
    RecipientKind,
    effective_status,
)
from confide.access.protection import protection_from
from confide.common.clock import as_utc


class Projects:
    """Projects as a given caller may see them.

    Calling it lists them (``access.projects(principal)``), as callers did before the
    service was split into parts.
    """

    def __init__(self, context: Context) -> None:
        self.context = context

    def load(self, conn: Connection, principal: Principal, slug: str) -> Project:
        """The project if the caller may see it; otherwise exactly "no such project"."""
        key = str(slug).strip().lower()[: rules.SLUG_MAX + 1]
        row = conn.execute(
            _project_query().where(tables.projects.c.slug == key, _visible_to(principal))
        ).first()
        if row is None:
            raise project_not_found()
        require_member(principal)
        return self._from_row(row)

    def project(self, principal: Principal, slug: str) -> Project:
        with self.context.engine.connect() as conn:
            return self.load(conn, principal, slug)

    def __call__(self, principal: Principal) -> list[Project]:
        return self.visible(principal)

    def visible(self, principal: Principal) -> list[Project]:
        """Every project the caller may see: their organisation's, plus submitted ones for
        reviewers of an approving body."""
        require_member(principal)
        with self.context.engine.connect() as conn:
            rows = conn.execute(
                _project_query()
                .where(_visible_to(principal))
                .order_by(tables.projects.c.created_at, tables.projects.c.slug)
            ).all()
        return [self._from_row(row) for row in rows]

    def history(self, principal: Principal, slug: str) -> list[dict[str, Any]]:
        """The project's audit trail as the caller may see it (roles, never names)."""
        with self.context.engine.connect() as conn:
            rows = _trail_rows(conn, self.load(conn, principal, slug).id)
        return [
            {
                "kind": row.kind,
                "actor_role": row.actor_role,
                "at": as_utc(row.at).isoformat(),
                **row.detail,
            }
            for row in rows
        ]

    def audit_trail(self, slug: str) -> list[dict[str, Any]]:
        """The full audit trail of a project, actors included (operators and tests only)."""
        with self.context.engine.connect() as conn:
            found = conn.execute(
                select(tables.projects.c.id).where(tables.projects.c.slug == slug)
            ).first()
            if found is None:
                raise project_not_found()
            rows = _trail_rows(conn, found.id)
        return [
            {
                "kind": row.kind,
                "actor_id": row.actor_id,
                "actor_role": row.actor_role,
                "at": as_utc(row.at),
                "detail": row.detail,
            }
            for row in rows
        ]

    def decisions(self, slug: str) -> list[dict[str, Any]]:
        """Each approver's recorded decision on a project (operators and tests only)."""
        approvals = tables.approvals
        with self.context.engine.connect() as conn:
            rows = conn.execute(
                select(approvals)
                .join(tables.projects, tables.projects.c.id == approvals.c.project_id)
                .where(tables.projects.c.slug == slug)
                .order_by(approvals.c.id)
            ).all()
        return [
            {
                "approver_id": row.approver_id,
                "decision": row.decision,
                "reason": row.reason,
                "at": as_utc(row.at),
            }
            for row in rows
        ]

    def _from_row(self, row: Any) -> Project:
        stored = ProjectStatus(row.status)
        return Project(
            id=row.id,
            slug=row.slug,
            organisation_id=row.organisation_id,
            organisation=row.org_slug,
            organisation_name=row.name,
            title=row.title,
            summary=row.summary,
            purpose=Purpose(row.purpose),
            recipient_kind=RecipientKind(row.recipient_kind),
            legal_basis=LegalBasis(row.legal_basis),
            datasets={table: tuple(columns) for table, columns in row.datasets.items()},
            window_start=row.window_start,
            window_end=row.window_end,
            expires_on=row.expires_on,
            status=effective_status(stored, row.expires_on, self.context.now().date()),
            stored_status=stored,
            applicant_id=row.applicant_id,
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
            protection=protection_from(row.protection),
        )


def _trail_rows(conn: Connection, project_id: str) -> Sequence[Row[Any]]:
    """The project's audit trail rows, oldest first."""
    events = tables.project_events
    return conn.execute(
        select(events).where(events.c.project_id == project_id).order_by(events.c.seq)
    ).all()


def _project_query() -> Select[Any]:
    return select(
        tables.projects,
        tables.organisations.c.slug.label("org_slug"),
        tables.organisations.c.name,
    ).join(tables.organisations, tables.organisations.c.id == tables.projects.c.organisation_id)


def _visible_to(principal: Principal) -> ColumnElement[bool]:
    own = tables.projects.c.organisation_id == principal.organisation_id
    if is_reviewer(principal):
        return or_(own, tables.projects.c.status != ProjectStatus.DRAFT.value)
    return own
