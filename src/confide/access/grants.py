"""The TRE's question: may this caller query this project now, and on what terms?

Kept on its own because it is the gate in front of the health data: only the project's own
organisation, only applicants, only approved projects within their term; and the grant it
returns is everything the query views need, so the TRE never reads the project itself.
"""

from __future__ import annotations

from confide.access.checks import require_role
from confide.access.context import Context
from confide.access.errors import Forbidden
from confide.access.model import Principal, ProjectGrant, ProjectStatus, Role
from confide.access.projects import Projects

_NOT_ACTIVE = {
    ProjectStatus.DRAFT: "has not been submitted or approved",
    ProjectStatus.SUBMITTED: "is awaiting approval",
    ProjectStatus.REJECTED: "was rejected",
    ProjectStatus.SUSPENDED: "is suspended and can do nothing until reinstated",
}


class ProjectNotActive(Forbidden):
    """The project exists and is the caller's, but it may not be used now (and why)."""

    def __init__(self, message: str, status: ProjectStatus, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class Grants:
    """Query authorisation for the trusted research environment."""

    def __init__(self, context: Context, projects: Projects) -> None:
        self.context = context
        self.projects = projects

    def authorise_query(self, principal: Principal, project_slug: str) -> ProjectGrant:
        """May this caller query this project now? A grant with everything the views need.

        Refuses: other organisations' projects (as "no such project" unless the caller already
        sees it as a reviewer), callers without the applicant role, and projects that are not
        approved, are suspended or have expired.
        """
        with self.context.engine.connect() as conn:
            project = self.projects.load(conn, principal, project_slug)
        if project.organisation_id != principal.organisation_id:
            raise Forbidden(
                "Only the project's own organisation may query it.",
                hint="Reviewers see applications but never query on a project's behalf.",
            )
        require_role(principal, Role.APPLICANT, "run queries for this project")
        status = project.status
        if status is not ProjectStatus.APPROVED:
            why = _NOT_ACTIVE.get(status) or f"expired on {project.expires_on} and can do nothing"
            raise ProjectNotActive(
                f"The project {project.slug} {why}.",
                status,
                hint="Only approved projects within their term may query.",
            )
        return ProjectGrant(
            project_id=project.id,
            slug=project.slug,
            organisation=project.organisation,
            purpose=project.purpose,
            recipient_kind=project.recipient_kind,
            legal_basis=project.legal_basis,
            tables=dict(project.datasets),
            window_start=project.window_start,
            window_end=project.window_end,
            expires_on=project.expires_on,
            person_id=principal.person_id,
            protection=project.protection,
        )
