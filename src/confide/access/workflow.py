"""How a project moves: apply, submit, approve or reject, suspend and reinstate.

Every change is compare-and-set on the stored status (two approvers acting at once cannot both
move a project), carries a published reason where it is a decision, and writes its audit line
and outbox events in the same transaction (:mod:`confide.access.trail`). The listeners hear of
it only after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from confide.access import rules
from confide.access import store as tables
from confide.access.checks import check_approver, require_own, require_role
from confide.access.context import Context, Notice, new_id
from confide.access.directory import Directory
from confide.access.errors import Conflict, Forbidden
from confide.access.model import Principal, Project, ProjectApplication, ProjectStatus, Role
from confide.access.projects import Projects
from confide.access.protection import DEFAULT_PROTECTION, OutputProtection
from confide.access.public_text import public_text
from confide.access.trail import record, record_refusal
from confide.common.errors import InvalidInput

REASON_MAX = 2000


def checked_reason(reason: str) -> str:
    """A decision's reason, fit to publish, or InvalidInput."""
    text = public_text(str(reason or ""), what="The reason", limit=REASON_MAX, multiline=True)
    if not text:
        raise InvalidInput(
            "A reason is required for every decision.",
            hint="Say briefly why; the reason is published with the decision, so do not "
            "name anyone.",
        )
    return text


class Workflow:
    """Every change of a project's state, each checked, recorded and told in one way."""

    def __init__(
        self,
        context: Context,
        directory: Directory,
        projects: Projects,
        *,
        approvals_required: int = 1,
    ) -> None:
        if approvals_required < 1:
            raise ValueError("approvals_required must be at least 1")
        self.context = context
        self.directory = directory
        self.projects = projects
        self.approvals_required = approvals_required

    def apply(self, principal: Principal, application: ProjectApplication) -> Project:
        """Create a draft project for the caller's organisation (applicants only).

        Insurance and marketing are refused under every circumstance; other combinations of
        purpose, recipient and legal basis are checked against :mod:`confide.access.rules`.
        Refusals are told to the listeners as ``project_refused``.
        """
        require_role(principal, Role.APPLICANT, "apply for projects")
        org = self.directory.organisation(principal.organisation)
        purpose, recipient, basis = rules.check_terms(application, org.kind)
        refusal = rules.why_not_allowed(purpose, recipient, basis)
        now = self.context.now()
        if refusal:
            with self.context.engine.begin() as conn:
                record_refusal(conn, refusal.reason)
            self.context.tell(
                Notice(
                    "project_refused",
                    {
                        "organisation": org.slug,
                        "purpose": purpose.value,
                        "recipient_kind": recipient.value,
                        "legal_basis": basis.value,
                        "reason": refusal.reason,
                        "actor_role": Role.APPLICANT.value,
                        "at": now.isoformat(),
                    },
                )
            )
            raise Forbidden(refusal.reason, hint=refusal.hint)
        checked = rules.check_application(application, purpose, recipient, basis, now.date())
        project_id = new_id()
        with self.context.engine.begin() as conn:
            slug = checked.slug or _free_slug(conn, rules.slug_from_title(checked.title))
            taken = conn.execute(
                select(tables.projects.c.id).where(tables.projects.c.slug == slug)
            ).first()
            if taken:
                raise Conflict(
                    f"The project name {slug!r} is not available.",
                    hint="Choose another name, or leave it out to have one made from the title.",
                )
            conn.execute(
                insert(tables.projects).values(
                    id=project_id,
                    slug=slug,
                    organisation_id=org.id,
                    title=checked.title,
                    summary=checked.summary,
                    purpose=purpose.value,
                    recipient_kind=recipient.value,
                    legal_basis=basis.value,
                    datasets={table: list(cols) for table, cols in checked.datasets.items()},
                    window_start=checked.window_start,
                    window_end=checked.window_end,
                    expires_on=checked.expires_on,
                    status=ProjectStatus.DRAFT.value,
                    applicant_id=principal.person_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            project = self.projects.load(conn, principal, slug)
            notice = record(conn, project, "project_applied", principal, Role.APPLICANT, now)
        self.context.tell(notice)
        return project

    def submit(self, principal: Principal, slug: str) -> Project:
        """Send a draft to the approving body (applicants of the project's organisation)."""
        now = self.context.now()
        with self.context.engine.begin() as conn:
            project = self.projects.load(conn, principal, slug)
            require_own(principal, project, Role.APPLICANT, "submit this project")
            refusal = rules.why_not_allowed(
                project.purpose, project.recipient_kind, project.legal_basis
            )
            if refusal:
                raise Forbidden(refusal.reason, hint=refusal.hint)
            _transition(conn, project, ProjectStatus.DRAFT, ProjectStatus.SUBMITTED, now)
            notice = record(conn, project, "project_submitted", principal, Role.APPLICANT, now)
            project = self.projects.load(conn, principal, slug)
        self.context.tell(notice)
        return project

    def approve(
        self,
        principal: Principal,
        slug: str,
        reason: str,
        protection: OutputProtection | None = None,
    ) -> Project:
        """Record an approver's approval; the project is approved once enough have agreed.

        ``protection``: how the project's outputs are to be protected (the default rule set
        when not given); the latest approval's choice is the project's."""
        return self._decide(
            principal, slug, reason, approve=True, protection=protection or DEFAULT_PROTECTION
        )

    def reject(self, principal: Principal, slug: str, reason: str) -> Project:
        """Reject a submitted application (one rejection is final)."""
        return self._decide(principal, slug, reason, approve=False)

    def _decide(
        self,
        principal: Principal,
        slug: str,
        reason: str,
        *,
        approve: bool,
        protection: OutputProtection | None = None,
    ) -> Project:
        text = checked_reason(reason)
        now = self.context.now()
        approvals = tables.approvals
        with self.context.engine.begin() as conn:
            project = self.projects.load(conn, principal, slug)
            check_approver(conn, principal, project)
            if project.status is not ProjectStatus.SUBMITTED:
                raise Conflict(
                    f"The project {project.slug} is {project.status.value}, not awaiting a "
                    "decision.",
                    hint="Only submitted applications can be approved or rejected.",
                )
            decided = conn.execute(
                select(approvals.c.id).where(
                    approvals.c.project_id == project.id,
                    approvals.c.approver_id == principal.person_id,
                )
            ).first()
            if decided:
                raise Conflict("You have already recorded a decision on this application.")
            conn.execute(
                insert(approvals).values(
                    project_id=project.id,
                    approver_id=principal.person_id,
                    decision="approve" if approve else "reject",
                    reason=text,
                    at=now,
                    protection=protection.as_dict() if approve and protection else None,
                )
            )
            if approve and protection is not None:
                conn.execute(
                    update(tables.projects)
                    .where(tables.projects.c.id == project.id)
                    .values(protection=protection.as_dict())
                )
            agreed = conn.execute(
                select(func.count(func.distinct(approvals.c.approver_id))).where(
                    approvals.c.project_id == project.id, approvals.c.decision == "approve"
                )
            ).scalar_one()
            detail: dict[str, Any] = {
                "reason": text,
                "approvals": agreed,
                "required": self.approvals_required,
            }
            if approve and protection is not None:
                detail["protection"] = protection.as_dict()
            if not approve:
                _transition(conn, project, ProjectStatus.SUBMITTED, ProjectStatus.REJECTED, now)
                kind = "project_rejected"
            elif agreed >= self.approvals_required:
                _transition(conn, project, ProjectStatus.SUBMITTED, ProjectStatus.APPROVED, now)
                kind = "project_approved"
            else:
                kind = "project_approval_recorded"
            notice = record(conn, project, kind, principal, Role.APPROVER, now, detail)
            project = self.projects.load(conn, principal, slug)
        self.context.tell(notice)
        return project

    def suspend(self, principal: Principal, slug: str, reason: str) -> Project:
        """Stop an approved project at once (administrators of an approving body)."""
        return self._oversee(
            principal, slug, reason, ProjectStatus.APPROVED, ProjectStatus.SUSPENDED
        )

    def reinstate(self, principal: Principal, slug: str, reason: str) -> Project:
        """Let a suspended project work again, if it has not expired meanwhile."""
        return self._oversee(
            principal, slug, reason, ProjectStatus.SUSPENDED, ProjectStatus.APPROVED
        )

    def _oversee(
        self,
        principal: Principal,
        slug: str,
        reason: str,
        before: ProjectStatus,
        after: ProjectStatus,
    ) -> Project:
        text = checked_reason(reason)
        now = self.context.now()
        kind = "project_suspended" if after is ProjectStatus.SUSPENDED else "project_reinstated"
        with self.context.engine.begin() as conn:
            project = self.projects.load(conn, principal, slug)
            if not (principal.approving_body and principal.has(Role.ADMINISTRATOR)):
                raise Forbidden(
                    "Only administrators of an approving body may suspend or reinstate projects."
                )
            if project.status is not before:
                raise Conflict(
                    f"The project {project.slug} is {project.status.value}; only "
                    f"{before.value} projects can be {kind.removeprefix('project_')}.",
                )
            _transition(conn, project, before, after, now)
            notice = record(
                conn, project, kind, principal, Role.ADMINISTRATOR, now, {"reason": text}
            )
            project = self.projects.load(conn, principal, slug)
        self.context.tell(notice)
        return project


def _free_slug(conn: Connection, base: str) -> str:
    for attempt in range(1000):
        slug = base if attempt == 0 else f"{base}-{attempt + 1}"
        if conn.execute(select(tables.projects.c.id).where(tables.projects.c.slug == slug)).first():
            continue
        return slug
    return f"{base}-{new_id()[:6]}"


def _transition(
    conn: Connection,
    project: Project,
    before: ProjectStatus,
    after: ProjectStatus,
    now: datetime,
) -> None:
    """Compare-and-set: move the project only if its stored status is still ``before``."""
    if project.status is not before:
        raise Conflict(
            f"The project {project.slug} is {project.status.value}, not {before.value}.",
            hint="Check its status with `confide access project show`.",
        )
    done = conn.execute(
        update(tables.projects)
        .where(and_(tables.projects.c.id == project.id, tables.projects.c.status == before.value))
        .values(status=after.value, updated_at=now)
    )
    if done.rowcount != 1:
        raise Conflict(
            f"The project {project.slug} changed while this was being decided; try again."
        )
