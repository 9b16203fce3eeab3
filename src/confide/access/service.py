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
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from confide.access import credentials, rules
from confide.access import store as t
from confide.access.errors import (
    BAD_CREDENTIALS,
    BAD_TOKEN,
    Conflict,
    Forbidden,
    Unauthenticated,
    project_not_found,
)
from confide.access.model import (
    LegalBasis,
    Organisation,
    Person,
    Principal,
    Project,
    ProjectApplication,
    ProjectGrant,
    ProjectStatus,
    Purpose,
    RecipientKind,
    Role,
    effective_status,
    parse_recipient_kind,
    parse_role,
)
from confide.access.protection import DEFAULT_PROTECTION, OutputProtection, protection_from
from confide.access.public_text import public_text
from confide.common import opstore
from confide.common.errors import InvalidInput, NotFound
from confide.common.home import Home
from confide.events import outbox
from confide.events.types import Event, ProjectApplied, ProjectDecided

Listener = Callable[[str, dict[str, Any]], None]
Clock = Callable[[], datetime]

DEFAULT_TOKEN_LIFETIME = timedelta(hours=1)
MAX_TOKEN_LIFETIME = timedelta(hours=24)
REASON_MAX = 2000
REVIEWER_ROLES = frozenset({Role.APPROVER, Role.OUTPUT_CHECKER, Role.ADMINISTRATOR})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ProjectNotActive(Forbidden):
    """The project exists and is the caller's, but it may not be used now (and why)."""

    def __init__(self, message: str, status: ProjectStatus, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_at: datetime
    expires_in: int

    def as_oauth(self) -> dict[str, Any]:
        """The RFC 6749 section 5.1 response body."""
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; every stored timestamp is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


def _checked_reason(reason: str) -> str:
    text = public_text(str(reason or ""), what="The reason", limit=REASON_MAX, multiline=True)
    if not text:
        raise InvalidInput(
            "A reason is required for every decision.",
            hint="Say briefly why; the reason is published with the decision, so do not "
            "name anyone.",
        )
    return text


class Access:
    """The access party over its own operational store."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = _utcnow,
        approvals_required: int = 1,
        token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        if approvals_required < 1:
            raise ValueError("approvals_required must be at least 1")
        self.engine = engine
        self.clock = clock
        self.approvals_required = approvals_required
        self.token_lifetime = token_lifetime
        self.listeners: list[Listener] = []

    @classmethod
    def open(cls, home: Home, **options: Any) -> Access:
        engine = opstore.make_engine("access", home.party("access"))
        opstore.migrate(engine, "access")
        return cls(engine, **options)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Access:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        return _aware(self.clock()).astimezone(UTC)

    def _notify(self, kind: str, body: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(kind, body)

    # --- organisations and people ----------------------------------------------------------

    def create_organisation(
        self,
        name: str,
        kind: RecipientKind | str,
        *,
        slug: str | None = None,
        approving_body: bool = False,
    ) -> Organisation:
        """Register an organisation; an approving body decides other organisations' projects."""
        clean = " ".join(str(name).split())
        if not (2 <= len(clean) <= 200):
            raise InvalidInput("An organisation name must be 2 to 200 characters long.")
        org = Organisation(
            id=_new_id(),
            slug=rules.checked_slug(slug or rules.slug_from_title(clean)),
            name=clean,
            kind=parse_recipient_kind(kind),
            approving_body=bool(approving_body),
            created_at=self._now(),
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(t.organisations).values(
                        id=org.id,
                        slug=org.slug,
                        name=org.name,
                        kind=org.kind.value,
                        approving_body=org.approving_body,
                        created_at=org.created_at,
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"An organisation called {org.slug!r} is already registered.",
                hint="Choose another short name with --slug.",
            ) from None
        self._notify("organisation_registered", {**org.as_dict(), "at": org.created_at.isoformat()})
        return org

    def organisation(self, slug: str) -> Organisation:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.organisations).where(t.organisations.c.slug == slug.strip().lower())
            ).first()
        if row is None:
            raise NotFound(f"No organisation called {slug[:60]!r} is registered.")
        return self._org(row)

    def organisations(self) -> list[Organisation]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.organisations).order_by(t.organisations.c.slug)).all()
        return [self._org(r) for r in rows]

    @staticmethod
    def _org(row: Any) -> Organisation:
        return Organisation(
            id=row.id,
            slug=row.slug,
            name=row.name,
            kind=RecipientKind(row.kind),
            approving_body=bool(row.approving_body),
            created_at=_aware(row.created_at),
        )

    def add_person(self, org: str, name: str, email: str, roles: Iterable[Role | str]) -> Person:
        """Add a person (or an existing person, by email) to an organisation with roles."""
        organisation = self.organisation(org)
        wanted = {parse_role(r) for r in roles}
        if not wanted:
            raise InvalidInput("Give the person at least one role.", hint=_role_hint())
        if (Role.APPROVER in wanted or Role.ADMINISTRATOR in wanted) and not (
            organisation.approving_body
        ):
            raise InvalidInput(
                "Approvers and administrators belong to an approving body, and "
                f"{organisation.slug} is not one.",
                hint="Give this person the applicant or output_checker role here.",
            )
        address = str(email).strip().lower()
        if not _EMAIL.match(address) or len(address) > 254:
            raise InvalidInput("That is not a usable email address.")
        clean = " ".join(str(name).split())
        if not (1 <= len(clean) <= 200):
            raise InvalidInput("A name must be 1 to 200 characters long.")
        now = self._now()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.people).where(t.people.c.email == address)).first()
            person_id = row.id if row else _new_id()
            if row is None:
                conn.execute(
                    insert(t.people).values(id=person_id, name=clean, email=address, created_at=now)
                )
            held = self._roles(conn, person_id, organisation.id)
            for role in sorted(wanted - held):
                conn.execute(
                    insert(t.memberships).values(
                        person_id=person_id,
                        organisation_id=organisation.id,
                        role=role.value,
                        granted_at=now,
                    )
                )
            person = self._person(conn, person_id)
        self._notify(
            "roles_granted",
            {
                "organisation": organisation.slug,
                "roles": sorted(r.value for r in wanted),
                "at": now.isoformat(),
            },
        )
        return person

    def revoke_role(self, org: str, email: str, role: Role | str) -> None:
        """Take a role away; it stops working at the holder's very next request."""
        organisation = self.organisation(org)
        person = self.person(email)
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.memberships).where(
                    t.memberships.c.person_id == person.id,
                    t.memberships.c.organisation_id == organisation.id,
                    t.memberships.c.role == parse_role(role).value,
                )
            )
        self._notify(
            "role_revoked",
            {"organisation": organisation.slug, "roles": [parse_role(role).value]},
        )

    def person(self, email: str) -> Person:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.people.c.id).where(t.people.c.email == str(email).strip().lower())
            ).first()
            if row is None:
                raise NotFound("No person with that email address is registered.")
            return self._person(conn, row.id)

    def organisations_of(self, person_id: str) -> frozenset[str]:
        """The ids of every organisation the person holds any role in (conflict checks)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.memberships.c.organisation_id)
                .where(t.memberships.c.person_id == person_id)
                .distinct()
            ).all()
        return frozenset(r.organisation_id for r in rows)

    @staticmethod
    def _roles(conn: Connection, person_id: str, organisation_id: str) -> set[Role]:
        rows = conn.execute(
            select(t.memberships.c.role).where(
                t.memberships.c.person_id == person_id,
                t.memberships.c.organisation_id == organisation_id,
            )
        ).all()
        return {Role(r.role) for r in rows}

    @staticmethod
    def _person(conn: Connection, person_id: str) -> Person:
        row = conn.execute(select(t.people).where(t.people.c.id == person_id)).one()
        held: dict[str, set[Role]] = {}
        for m in conn.execute(
            select(t.organisations.c.slug, t.memberships.c.role)
            .join(t.organisations, t.organisations.c.id == t.memberships.c.organisation_id)
            .where(t.memberships.c.person_id == person_id)
        ):
            held.setdefault(m.slug, set()).add(Role(m.role))
        return Person(
            id=row.id,
            name=row.name,
            email=row.email,
            roles={k: frozenset(v) for k, v in held.items()},
        )

    # --- clients and tokens ----------------------------------------------------------------

    def create_client(self, org: str, email: str) -> tuple[str, str]:
        """A new API client acting for one person in one organisation: ``(client_id, secret)``.

        The secret is shown this once; only its scrypt hash is kept.
        """
        organisation = self.organisation(org)
        person = self.person(email)
        if organisation.slug not in person.roles:
            raise InvalidInput(
                f"That person holds no role in {organisation.slug}.",
                hint="Add them to the organisation first (confide access person add).",
            )
        client_id, secret = credentials.new_client_id(), credentials.new_secret()
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.api_clients).values(
                    client_id=client_id,
                    secret_hash=credentials.hash_secret(secret),
                    organisation_id=organisation.id,
                    person_id=person.id,
                    created_at=self._now(),
                )
            )
        return client_id, secret

    def revoke_client(self, client_id: str) -> None:
        """Stop a client: its secret and every token it holds stop working at once."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.api_clients)
                .where(t.api_clients.c.client_id == client_id, t.api_clients.c.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
            conn.execute(delete(t.tokens).where(t.tokens.c.client_id == client_id))
        if done.rowcount == 0:
            raise NotFound("No active client with that id.")

    def issue_token(
        self, client_id: str, secret: str, *, lifetime: timedelta | None = None
    ) -> IssuedToken:
        """OAuth2 client credentials: a bearer token for a valid client id and secret.

        A wrong secret, an unknown client and a revoked client get the same answer after the
        same work, so the answer does not tell anyone which clients exist.
        """
        life = lifetime or self.token_lifetime
        if not (timedelta(seconds=1) <= life <= MAX_TOKEN_LIFETIME):
            raise InvalidInput("A token may last from one second to 24 hours.")
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.api_clients).where(t.api_clients.c.client_id == str(client_id)[:40])
            ).first()
        if row is None:
            credentials.burn_time(str(secret))
            raise Unauthenticated(BAD_CREDENTIALS)
        good = credentials.verify_secret(str(secret), row.secret_hash)
        if not good or row.revoked_at is not None:
            raise Unauthenticated(BAD_CREDENTIALS)
        token = credentials.new_token()
        now = self._now()
        expires = now + life
        with self.engine.begin() as conn:
            conn.execute(delete(t.tokens).where(t.tokens.c.expires_at < now))
            conn.execute(
                insert(t.tokens).values(
                    token_hash=credentials.token_digest(token),
                    client_id=row.client_id,
                    issued_at=now,
                    expires_at=expires,
                )
            )
        return IssuedToken(token, expires, int(life.total_seconds()))

    def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token, with the roles they hold now."""
        if not token or len(token) > 200:
            raise Unauthenticated(BAD_TOKEN)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    t.tokens.c.expires_at,
                    t.api_clients.c.client_id,
                    t.api_clients.c.person_id,
                    t.api_clients.c.revoked_at,
                    t.organisations.c.id.label("organisation_id"),
                    t.organisations.c.slug,
                    t.organisations.c.approving_body,
                )
                .join(t.api_clients, t.api_clients.c.client_id == t.tokens.c.client_id)
                .join(t.organisations, t.organisations.c.id == t.api_clients.c.organisation_id)
                .where(t.tokens.c.token_hash == credentials.token_digest(token))
            ).first()
            if row is None or row.revoked_at is not None or _aware(row.expires_at) <= self._now():
                raise Unauthenticated(BAD_TOKEN)
            roles = self._roles(conn, row.person_id, row.organisation_id)
        return Principal(
            person_id=row.person_id,
            organisation_id=row.organisation_id,
            organisation=row.slug,
            roles=frozenset(roles),
            approving_body=bool(row.approving_body),
            client_id=row.client_id,
        )

    def principal_for(self, org: str, email: str) -> Principal:
        """The principal of a person acting for an organisation, for local operator tools
        (the CLI and the demo) that already hold the store; network callers use tokens."""
        organisation = self.organisation(org)
        person = self.person(email)
        return Principal(
            person_id=person.id,
            organisation_id=organisation.id,
            organisation=organisation.slug,
            roles=person.roles.get(organisation.slug, frozenset()),
            approving_body=organisation.approving_body,
        )

    # --- reading projects ------------------------------------------------------------------

    def _project_query(self):
        return select(
            t.projects, t.organisations.c.slug.label("org_slug"), t.organisations.c.name
        ).join(t.organisations, t.organisations.c.id == t.projects.c.organisation_id)

    def _to_project(self, row: Any) -> Project:
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
            datasets={k: tuple(v) for k, v in row.datasets.items()},
            window_start=row.window_start,
            window_end=row.window_end,
            expires_on=row.expires_on,
            status=effective_status(stored, row.expires_on, self._now().date()),
            stored_status=stored,
            applicant_id=row.applicant_id,
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            protection=protection_from(row.protection),
        )

    @staticmethod
    def _reviewer(principal: Principal) -> bool:
        return principal.approving_body and bool(principal.roles & REVIEWER_ROLES)

    def _visible_clause(self, principal: Principal):
        own = t.projects.c.organisation_id == principal.organisation_id
        if self._reviewer(principal):
            return or_(own, t.projects.c.status != ProjectStatus.DRAFT.value)
        return own

    def _load(self, conn: Connection, principal: Principal, slug: str) -> Project:
        """The project if the caller may see it; otherwise exactly "no such project"."""
        key = str(slug).strip().lower()[: rules.SLUG_MAX + 1]
        row = conn.execute(
            self._project_query().where(t.projects.c.slug == key, self._visible_clause(principal))
        ).first()
        if row is None:
            raise project_not_found()
        self._require_member(principal)
        return self._to_project(row)

    def project(self, principal: Principal, slug: str) -> Project:
        with self.engine.connect() as conn:
            return self._load(conn, principal, slug)

    def projects(self, principal: Principal) -> list[Project]:
        """Every project the caller may see: their organisation's, plus submitted ones for
        reviewers of an approving body."""
        self._require_member(principal)
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._project_query()
                .where(self._visible_clause(principal))
                .order_by(t.projects.c.created_at, t.projects.c.slug)
            ).all()
        return [self._to_project(r) for r in rows]

    def history(self, principal: Principal, slug: str) -> list[dict[str, Any]]:
        """The project's audit trail as the caller may see it (roles, never names)."""
        with self.engine.connect() as conn:
            project = self._load(conn, principal, slug)
            rows = conn.execute(
                select(t.project_events)
                .where(t.project_events.c.project_id == project.id)
                .order_by(t.project_events.c.seq)
            ).all()
        return [
            {
                "kind": r.kind,
                "actor_role": r.actor_role,
                "at": _aware(r.at).isoformat(),
                **r.detail,
            }
            for r in rows
        ]

    # --- the workflow ----------------------------------------------------------------------

    def apply(self, principal: Principal, application: ProjectApplication) -> Project:
        """Create a draft project for the caller's organisation (applicants only).

        Insurance and marketing are refused under every circumstance; other combinations of
        purpose, recipient and legal basis are checked against :mod:`confide.access.rules`.
        Refusals are told to the listeners as ``project_refused``.
        """
        self._require(principal, Role.APPLICANT, "apply for projects")
        org = self.organisation(principal.organisation)
        purpose, recipient, basis = rules.check_terms(application, org.kind)
        refusal = rules.why_not_allowed(purpose, recipient, basis)
        now = self._now()
        if refusal:
            with self.engine.begin() as conn:
                outbox.write(
                    conn,
                    t.outbox,
                    [ProjectDecided(_new_id(), "", "refused", Role.APPLICANT.value, refusal[0])],
                )
            self._notify(
                "project_refused",
                {
                    "organisation": org.slug,
                    "purpose": purpose.value,
                    "recipient_kind": recipient.value,
                    "legal_basis": basis.value,
                    "reason": refusal[0],
                    "actor_role": Role.APPLICANT.value,
                    "at": now.isoformat(),
                },
            )
            raise Forbidden(refusal[0], hint=refusal[1])
        checked = rules.check_application(application, purpose, recipient, basis, now.date())
        project_id = _new_id()
        with self.engine.begin() as conn:
            slug = checked.slug or self._free_slug(conn, rules.slug_from_title(checked.title))
            taken = conn.execute(select(t.projects.c.id).where(t.projects.c.slug == slug)).first()
            if taken:
                raise Conflict(
                    f"The project name {slug!r} is not available.",
                    hint="Choose another name, or leave it out to have one made from the title.",
                )
            conn.execute(
                insert(t.projects).values(
                    id=project_id,
                    slug=slug,
                    organisation_id=org.id,
                    title=checked.title,
                    summary=checked.summary,
                    purpose=purpose.value,
                    recipient_kind=recipient.value,
                    legal_basis=basis.value,
                    datasets={k: list(v) for k, v in checked.datasets.items()},
                    window_start=checked.window_start,
                    window_end=checked.window_end,
                    expires_on=checked.expires_on,
                    status=ProjectStatus.DRAFT.value,
                    applicant_id=principal.person_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            project = self._load(conn, principal, slug)
            body = self._record(conn, project, "project_applied", principal, Role.APPLICANT, now)
        self._notify("project_applied", body)
        return project

    @staticmethod
    def _free_slug(conn: Connection, base: str) -> str:
        for i in range(1000):
            slug = base if i == 0 else f"{base}-{i + 1}"
            if conn.execute(select(t.projects.c.id).where(t.projects.c.slug == slug)).first():
                continue
            return slug
        return f"{base}-{uuid.uuid4().hex[:6]}"

    def submit(self, principal: Principal, slug: str) -> Project:
        """Send a draft to the approving body (applicants of the project's organisation)."""
        now = self._now()
        with self.engine.begin() as conn:
            project = self._load(conn, principal, slug)
            self._require_own(principal, project, Role.APPLICANT, "submit this project")
            refusal = rules.why_not_allowed(
                project.purpose, project.recipient_kind, project.legal_basis
            )
            if refusal:
                raise Forbidden(refusal[0], hint=refusal[1])
            self._transition(conn, project, ProjectStatus.DRAFT, ProjectStatus.SUBMITTED, now)
            body = self._record(conn, project, "project_submitted", principal, Role.APPLICANT, now)
            project = self._load(conn, principal, slug)
        self._notify("project_submitted", body)
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
        text = _checked_reason(reason)
        now = self._now()
        events: list[tuple[str, dict[str, Any]]] = []
        with self.engine.begin() as conn:
            project = self._load(conn, principal, slug)
            self._check_approver(conn, principal, project)
            if project.status is not ProjectStatus.SUBMITTED:
                raise Conflict(
                    f"The project {project.slug} is {project.status.value}, not awaiting a "
                    "decision.",
                    hint="Only submitted applications can be approved or rejected.",
                )
            decided = conn.execute(
                select(t.approvals.c.id).where(
                    t.approvals.c.project_id == project.id,
                    t.approvals.c.approver_id == principal.person_id,
                )
            ).first()
            if decided:
                raise Conflict("You have already recorded a decision on this application.")
            decision = "approve" if approve else "reject"
            conn.execute(
                insert(t.approvals).values(
                    project_id=project.id,
                    approver_id=principal.person_id,
                    decision=decision,
                    reason=text,
                    at=now,
                    protection=protection.as_dict() if approve and protection else None,
                )
            )
            if approve and protection is not None:
                conn.execute(
                    update(t.projects)
                    .where(t.projects.c.id == project.id)
                    .values(protection=protection.as_dict())
                )
            agreed = conn.execute(
                select(func.count(func.distinct(t.approvals.c.approver_id))).where(
                    t.approvals.c.project_id == project.id, t.approvals.c.decision == "approve"
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
                self._transition(
                    conn, project, ProjectStatus.SUBMITTED, ProjectStatus.REJECTED, now
                )
                kind = "project_rejected"
            elif agreed >= self.approvals_required:
                self._transition(
                    conn, project, ProjectStatus.SUBMITTED, ProjectStatus.APPROVED, now
                )
                kind = "project_approved"
            else:
                kind = "project_approval_recorded"
            events.append(
                (kind, self._record(conn, project, kind, principal, Role.APPROVER, now, detail))
            )
            project = self._load(conn, principal, slug)
        for kind, body in events:
            self._notify(kind, body)
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
        text = _checked_reason(reason)
        now = self._now()
        kind = "project_suspended" if after is ProjectStatus.SUSPENDED else "project_reinstated"
        with self.engine.begin() as conn:
            project = self._load(conn, principal, slug)
            if not (principal.approving_body and principal.has(Role.ADMINISTRATOR)):
                raise Forbidden(
                    "Only administrators of an approving body may suspend or reinstate projects."
                )
            if project.status is not before:
                raise Conflict(
                    f"The project {project.slug} is {project.status.value}; only "
                    f"{before.value} projects can be {kind.removeprefix('project_')}.",
                )
            self._transition(conn, project, before, after, now)
            body = self._record(
                conn, project, kind, principal, Role.ADMINISTRATOR, now, {"reason": text}
            )
            project = self._load(conn, principal, slug)
        self._notify(kind, body)
        return project

    # --- the TRE's question ----------------------------------------------------------------

    def authorise_query(self, principal: Principal, project_slug: str) -> ProjectGrant:
        """May this caller query this project now? A grant with everything the views need.

        Refuses: other organisations' projects (as "no such project" unless the caller already
        sees it as a reviewer), callers without the applicant role, and projects that are not
        approved, are suspended or have expired.
        """
        with self.engine.connect() as conn:
            project = self._load(conn, principal, project_slug)
        if project.organisation_id != principal.organisation_id:
            raise Forbidden(
                "Only the project's own organisation may query it.",
                hint="Reviewers see applications but never query on a project's behalf.",
            )
        self._require(principal, Role.APPLICANT, "run queries for this project")
        status = project.status
        if status is not ProjectStatus.APPROVED:
            messages = {
                ProjectStatus.DRAFT: "has not been submitted or approved",
                ProjectStatus.SUBMITTED: "is awaiting approval",
                ProjectStatus.REJECTED: "was rejected",
                ProjectStatus.SUSPENDED: "is suspended and can do nothing until reinstated",
                ProjectStatus.EXPIRED: f"expired on {project.expires_on} and can do nothing",
            }
            raise ProjectNotActive(
                f"The project {project.slug} {messages[status]}.",
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

    # --- checks and records ----------------------------------------------------------------

    @staticmethod
    def _require_member(principal: Principal) -> None:
        if not principal.roles:
            raise Forbidden(
                f"You hold no role in {principal.organisation} any more, so you may not see "
                "its projects.",
                hint="Ask an administrator of your organisation to grant a role.",
            )

    @staticmethod
    def _require(principal: Principal, role: Role, doing: str) -> None:
        if not principal.has(role):
            raise Forbidden(
                f"You need the {role.value} role in {principal.organisation} to {doing}.",
                hint="Ask an administrator of your organisation to grant the role.",
            )

    def _require_own(self, principal: Principal, project: Project, role: Role, doing: str) -> None:
        if project.organisation_id != principal.organisation_id:
            raise Forbidden(f"Only the project's own organisation may {doing}.")
        self._require(principal, role, doing)

    def _check_approver(self, conn: Connection, principal: Principal, project: Project) -> None:
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
        if project.organisation_id == principal.organisation_id or self._roles(
            conn, principal.person_id, project.organisation_id
        ):
            raise Forbidden(
                "You are a member of the applying organisation, so you may not decide its "
                "application.",
                hint="Another approver must decide it.",
            )

    @staticmethod
    def _transition(
        conn: Connection,
        project: Project,
        before: ProjectStatus,
        after: ProjectStatus,
        now: datetime,
    ) -> None:
        if project.status is not before:
            raise Conflict(
                f"The project {project.slug} is {project.status.value}, not {before.value}.",
                hint="Check its status with `confide access project show`.",
            )
        done = conn.execute(
            update(t.projects)
            .where(and_(t.projects.c.id == project.id, t.projects.c.status == before.value))
            .values(status=after.value, updated_at=now)
        )
        if done.rowcount != 1:
            raise Conflict(
                f"The project {project.slug} changed while this was being decided; try again."
            )

    @staticmethod
    def _record(
        conn: Connection,
        project: Project,
        kind: str,
        principal: Principal,
        role: Role,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append to the project's audit trail and put what other parties must hear of it in
        the outbox, in the caller's transaction; return the public body for the listeners."""
        conn.execute(
            insert(t.project_events).values(
                project_id=project.id,
                kind=kind,
                actor_id=principal.person_id,
                actor_role=role.value,
                at=now,
                detail=detail or {},
            )
        )
        outbox.write(conn, t.outbox, project_events(project, kind, role, detail or {}))
        return {
            "project": project.slug,
            "organisation": project.organisation,
            "organisation_name": project.organisation_name,
            "title": project.title,
            "purpose": project.purpose.value,
            "recipient_kind": project.recipient_kind.value,
            "legal_basis": project.legal_basis.value,
            "datasets": {k: list(v) for k, v in project.datasets.items()},
            "window_start": project.window_start.isoformat(),
            "window_end": project.window_end.isoformat(),
            "expires_on": project.expires_on.isoformat(),
            "actor_role": role.value,
            "at": now.isoformat(),
            **(detail or {}),
        }

    def audit_trail(self, slug: str) -> list[dict[str, Any]]:
        """The full audit trail of a project, actors included (operators and tests only)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.projects.c.id).where(t.projects.c.slug == slug)).first()
            if row is None:
                raise project_not_found()
            rows = conn.execute(
                select(t.project_events)
                .where(t.project_events.c.project_id == row.id)
                .order_by(t.project_events.c.seq)
            ).all()
        return [
            {
                "kind": r.kind,
                "actor_id": r.actor_id,
                "actor_role": r.actor_role,
                "at": _aware(r.at),
                "detail": r.detail,
            }
            for r in rows
        ]

    def decisions(self, slug: str) -> list[dict[str, Any]]:
        """Each approver's recorded decision on a project (operators and tests only)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.approvals)
                .join(t.projects, t.projects.c.id == t.approvals.c.project_id)
                .where(t.projects.c.slug == slug)
                .order_by(t.approvals.c.id)
            ).all()
        return [
            {
                "approver_id": r.approver_id,
                "decision": r.decision,
                "reason": r.reason,
                "at": _aware(r.at),
            }
            for r in rows
        ]


def _role_hint() -> str:
    return "Roles: " + ", ".join(r.value for r in Role) + "."


_DECISIONS = {
    "project_approved": "approved",
    "project_rejected": "rejected",
    "project_suspended": "suspended",
}


def project_events(project: Project, kind: str, role: Role, detail: dict[str, Any]) -> list[Event]:
    """The events a project's change means for other parties (the ledger): an application, or
    a decision; submissions, single approvals and reinstatements stay in the audit trail."""
    if kind == "project_applied":
        return [
            ProjectApplied(
                _new_id(),
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
            _new_id(),
            project.slug,
            decision,
            role.value,
            str(detail.get("reason") or "") if decision != "approved" else "",
            project.expires_on.isoformat() if decision == "approved" else "",
        )
    ]
