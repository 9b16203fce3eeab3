"""The role checks the projects, the workflow and the grants all make, in one wording.

A caller who may not do something hears which role they lack and where, never anything about
the project that they could not already see.
"""

from __future__ import annotations

from sqlalchemy import Connection

from confide.access.directory import roles_held
from confide.access.errors import Forbidden
from confide.access.model import Principal, Project, Role

REVIEWER_ROLES = frozenset({Role.APPROVER, Role.OUTPUT_CHECKER, Role.ADMINISTRATOR})


def is_reviewer(principal: Principal) -> bool:
    """Approvers, output checkers and administrators of an approving body."""
    return principal.approving_body and bool(principal.roles & REVIEWER_ROLES)


def require_member(principal: Principal) -> None:
    if not principal.roles:
        raise Forbidden(
            f"You hold no role in {principal.organisation} any more, so you may not see "
            "its projects.",
            hint="Ask an administrator of your organisation to grant a role.",
        )


def require_role(principal: Principal, role: Role, doing: str) -> None:
    if not principal.has(role):
        raise Forbidden(
            f"You need the {role.value} role in {principal.organisation} to {doing}.",
            hint="Ask an administrator of your organisation to grant the role.",
        )


def require_own(principal: Principal, project: Project, role: Role, doing: str) -> None:
    """The project's own organisation, with ``role`` there."""
    if project.organisation_id != principal.organisation_id:
        raise Forbidden(f"Only the project's own organisation may {doing}.")
    require_role(principal, role, doing)


def check_approver(conn: Connection, principal: Principal, project: Project) -> None:
    """Approvers belong to an approving body, never to the applying organisation, and
    nobody decides their own application."""
    if not (principal.approving_body and principal.has(Role.APPROVER)):
        raise Forbidden(
            "Only approvers of an approving body may decide applications.",
            hint="Applications are decided by the approving body, not by the applicant's "
            "organisation.",
        )
    if project.applicant_id == principal.person_id:
        raise Forbidden("Nobody may decide their own application.")
    if project.organisation_id == principal.organisation_id or roles_held(
        conn, principal.person_id, project.organisation_id
    ):
        raise Forbidden(
            "You are a member of the applying organisation, so you may not decide its application.",
            hint="Another approver must decide it.",
        )
