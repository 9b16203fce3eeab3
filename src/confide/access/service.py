"""The access service: who may do what, for what purpose, on what legal basis.

Every method that acts for someone takes the caller's :class:`Principal` (from
:meth:`Access.authenticate`) and checks, in this order: can the caller see the project at all
(if not: "no such project", the same answer as for a name nobody uses), may the caller's role do
this (if not: forbidden), is the project in a state that allows it (if not: conflict).

A caller sees the projects of their own organisation. Reviewers (approvers, output checkers and
administrators of an approving body) also see other organisations' projects once submitted;
drafts stay private to their organisation. Only the project's own organisation can query it.

State changes are compare-and-set on the stored status, so two approvers acting at once cannot
both move a project. After each commit the ``listeners`` hear ``(kind, body)``; bodies carry
organisation and project names, roles, and public facts only, never people's names or emails.

:class:`Access` is a facade: it opens the store, holds the clock and the listeners, and hands
each call to one of its parts, which can also be used directly:

- ``access.directory`` (:mod:`~confide.access.directory`): organisations, people, roles;
- ``access.tokens`` (:mod:`~confide.access.tokens`): API clients, bearer tokens, principals;
- ``access.projects`` (:mod:`~confide.access.projects`): reading projects under the visibility
  rule, and their audit trails; ``access.projects(principal)`` lists what the caller may see;
- ``access.workflow`` (:mod:`~confide.access.workflow`): apply, submit, decide, suspend,
  reinstate; each change recorded by :mod:`~confide.access.trail` in its own transaction;
- ``access.grants`` (:mod:`~confide.access.grants`): the TRE's query authorisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from confide.access.context import Clock, Context, Listener, Notice
from confide.access.directory import Directory
from confide.access.grants import Grants, ProjectNotActive
from confide.access.model import (
    Organisation,
    Person,
    Principal,
    Project,
    ProjectApplication,
    ProjectGrant,
    RecipientKind,
    Role,
)
from confide.access.projects import Projects
from confide.access.protection import OutputProtection
from confide.access.tokens import (
    DEFAULT_TOKEN_LIFETIME,
    ClientCredentials,
    IssuedToken,
    Tokens,
)
from confide.access.workflow import Workflow
from confide.common import opstore
from confide.common.clock import as_utc, utcnow
from confide.common.home import Home

__all__ = ["Access", "IssuedToken", "ProjectNotActive"]


class Access:
    """The access party over its own operational store."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utcnow,
        approvals_required: int = 1,
        token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.listeners: list[Listener] = []
        context = Context(engine=engine, now=self._now, tell=self._tell)
        self.directory = Directory(context)
        self.tokens = Tokens(context, self.directory, lifetime=token_lifetime)
        self.projects = Projects(context)
        self.workflow = Workflow(
            context, self.directory, self.projects, approvals_required=approvals_required
        )
        self.grants = Grants(context, self.projects)

    @classmethod
    def open(cls, home: Home, **options: Any) -> Access:
        return cls(opstore.open_store("access", home.party("access")), **options)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Access:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def approvals_required(self) -> int:
        return self.workflow.approvals_required

    @property
    def token_lifetime(self) -> timedelta:
        return self.tokens.lifetime

    def _now(self) -> datetime:
        """The injected clock's time, aware and in UTC (read afresh, so tests may swap it)."""
        return as_utc(self.clock()).astimezone(UTC)

    def _tell(self, notice: Notice) -> None:
        for listener in list(self.listeners):
            listener(notice.kind, notice.body)

    # --- organisations and people (access.directory) ---------------------------------------

    def create_organisation(
        self,
        name: str,
        kind: RecipientKind | str,
        *,
        slug: str | None = None,
        approving_body: bool = False,
    ) -> Organisation:
        return self.directory.create_organisation(
            name, kind, slug=slug, approving_body=approving_body
        )

    def organisation(self, slug: str) -> Organisation:
        return self.directory.organisation(slug)

    def organisations(self) -> list[Organisation]:
        return self.directory.organisations()

    def add_person(self, org: str, name: str, email: str, roles: Iterable[Role | str]) -> Person:
        return self.directory.add_person(org, name, email, roles)

    def revoke_role(self, org: str, email: str, role: Role | str) -> None:
        self.directory.revoke_role(org, email, role)

    def person(self, email: str) -> Person:
        return self.directory.person(email)

    def organisations_of(self, person_id: str) -> frozenset[str]:
        return self.directory.organisations_of(person_id)

    # --- clients and tokens (access.tokens) ------------------------------------------------

    def create_client(self, org: str, email: str) -> ClientCredentials:
        return self.tokens.create_client(org, email)

    def revoke_client(self, client_id: str) -> None:
        self.tokens.revoke_client(client_id)

    def issue_token(
        self, client_id: str, secret: str, *, lifetime: timedelta | None = None
    ) -> IssuedToken:
        return self.tokens.issue_token(client_id, secret, lifetime=lifetime)

    def authenticate(self, token: str) -> Principal:
        return self.tokens.authenticate(token)

    def principal_for(self, org: str, email: str) -> Principal:
        return self.tokens.principal_for(org, email)

    # --- reading projects (access.projects) ------------------------------------------------

    def project(self, principal: Principal, slug: str) -> Project:
        return self.projects.project(principal, slug)

    def history(self, principal: Principal, slug: str) -> list[dict[str, Any]]:
        return self.projects.history(principal, slug)

    def audit_trail(self, slug: str) -> list[dict[str, Any]]:
        return self.projects.audit_trail(slug)

    def decisions(self, slug: str) -> list[dict[str, Any]]:
        return self.projects.decisions(slug)

    # --- the workflow (access.workflow) ----------------------------------------------------

    def apply(self, principal: Principal, application: ProjectApplication) -> Project:
        return self.workflow.apply(principal, application)

    def submit(self, principal: Principal, slug: str) -> Project:
        return self.workflow.submit(principal, slug)

    def approve(
        self,
        principal: Principal,
        slug: str,
        reason: str,
        protection: OutputProtection | None = None,
    ) -> Project:
        return self.workflow.approve(principal, slug, reason, protection)

    def reject(self, principal: Principal, slug: str, reason: str) -> Project:
        return self.workflow.reject(principal, slug, reason)

    def suspend(self, principal: Principal, slug: str, reason: str) -> Project:
        return self.workflow.suspend(principal, slug, reason)

    def reinstate(self, principal: Principal, slug: str, reason: str) -> Project:
        return self.workflow.reinstate(principal, slug, reason)

    # --- the TRE's question (access.grants) ------------------------------------------------

    def authorise_query(self, principal: Principal, project_slug: str) -> ProjectGrant:
        return self.grants.authorise_query(principal, project_slug)
