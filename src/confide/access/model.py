"""The vocabulary of access: roles, purposes, recipients, legal bases and project states.

Kept apart from the store and the service so the API, the CLI, the TRE and the ledger share one
set of names, one way of reading them from user input, and one shape for what a project grants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from confide.access.protection import DEFAULT_PROTECTION, OutputProtection
from confide.common.enums import parse_enum


class Role(StrEnum):
    """What a person may do within one organisation."""

    APPLICANT = "applicant"  # applies for projects and runs their queries
    APPROVER = "approver"  # decides applications (only in an approving body)
    OUTPUT_CHECKER = "output_checker"  # reviews held outputs before release
    ADMINISTRATOR = "administrator"  # suspends and reinstates projects (approving body)
    OPERATOR = "operator"  # runs the roll-out; looks a person up (usage report, choices), logged


class Purpose(StrEnum):
    """Why a project wants the data. The last two are accepted as words but always refused."""

    PLANNING = "planning"
    RESEARCH = "research"
    PUBLIC_HEALTH = "public_health"
    COMMISSIONING = "commissioning"
    DIRECT_CARE_AUDIT = "direct_care_audit"
    INSURANCE = "insurance"
    MARKETING = "marketing"


class RecipientKind(StrEnum):
    """What kind of organisation receives the outputs (the choices policy depends on it)."""

    NHS = "nhs"
    ACADEMIC = "academic"
    CHARITY = "charity"
    COMMERCIAL = "commercial"


class LegalBasis(StrEnum):
    """The legal basis the application relies on."""

    PUBLIC_TASK = "public_task"  # UK GDPR art. 6(1)(e)
    CONSENT = "consent"  # explicit consent for a specific study
    COPI_REG3 = "copi_reg3"  # Health Service (Control of Patient Information) Regs 2002, reg. 3
    SECTION_251 = "section_251"  # NHS Act 2006 s.251 support (Confidentiality Advisory Group)
    LEGITIMATE_INTERESTS = "legitimate_interests"  # UK GDPR art. 6(1)(f); not for public bodies


class ProjectStatus(StrEnum):
    """Where a project is in its life. ``expired`` is computed from the expiry date on read."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    EXPIRED = "expired"


def parse_role(raw: str | Role) -> Role:
    return parse_enum(Role, "role", raw)


def parse_purpose(raw: str | Purpose) -> Purpose:
    return parse_enum(Purpose, "purpose", raw)


def parse_recipient_kind(raw: str | RecipientKind) -> RecipientKind:
    return parse_enum(RecipientKind, "recipient kind", raw)


def parse_legal_basis(raw: str | LegalBasis) -> LegalBasis:
    return parse_enum(LegalBasis, "legal basis", raw)


def effective_status(stored: ProjectStatus, expires_on: date, today: date) -> ProjectStatus:
    """A project past its expiry date is expired whatever was stored (a rejection stays one)."""
    if stored is not ProjectStatus.REJECTED and today > expires_on:
        return ProjectStatus.EXPIRED
    return stored


@dataclass(frozen=True)
class Organisation:
    id: str
    slug: str
    name: str
    kind: RecipientKind
    approving_body: bool
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "kind": self.kind.value,
            "approving_body": self.approving_body,
        }


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str
    roles: Mapping[str, frozenset[Role]]  # organisation slug → roles held there


@dataclass(frozen=True)
class Principal:
    """Who is calling: one person acting for one organisation, with the roles held there.

    Roles are read from the store when the token is presented, so removing a role takes effect
    on the very next request.
    """

    person_id: str
    organisation_id: str
    organisation: str  # slug
    roles: frozenset[Role]
    approving_body: bool
    client_id: str | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class ProjectApplication:
    """What an applicant asks for. Validated by :mod:`confide.access.rules` when applied."""

    title: str
    purpose: Purpose | str
    legal_basis: LegalBasis | str
    datasets: Mapping[str, list[str] | tuple[str, ...]]
    window_start: date
    window_end: date
    expires_on: date
    slug: str | None = None
    recipient_kind: RecipientKind | str | None = None  # defaults to the organisation's kind
    summary: str = ""


@dataclass(frozen=True)
class Project:
    """A project as stored, with its status as of the moment it was read."""

    id: str
    slug: str
    organisation_id: str
    organisation: str  # slug
    organisation_name: str
    title: str
    summary: str
    purpose: Purpose
    recipient_kind: RecipientKind
    legal_basis: LegalBasis
    datasets: Mapping[str, tuple[str, ...]]
    window_start: date
    window_end: date
    expires_on: date
    status: ProjectStatus
    stored_status: ProjectStatus
    applicant_id: str
    created_at: datetime
    updated_at: datetime
    protection: OutputProtection = DEFAULT_PROTECTION

    def as_dict(self) -> dict[str, Any]:
        """The project as shown to callers (no applicant identity: the API never needs it)."""
        return {
            "slug": self.slug,
            "organisation": self.organisation,
            "organisation_name": self.organisation_name,
            "title": self.title,
            "summary": self.summary,
            "purpose": self.purpose.value,
            "recipient_kind": self.recipient_kind.value,
            "legal_basis": self.legal_basis.value,
            "datasets": {t: list(c) for t, c in self.datasets.items()},
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "status": self.status.value,
            "protection": self.protection.as_dict(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class ProjectGrant:
    """Everything the project views and the policy need to serve one approved project.

    ``project_id`` is unique for all time; key per-project pseudonyms on it (not on the slug).
    ``tables`` lists the approved columns of each table; the patient key is never listed: every
    view carries the project's own pseudonym. Dates outside ``window_start``..``window_end``
    (inclusive) must not be visible.
    """

    project_id: str
    slug: str
    organisation: str
    purpose: Purpose
    recipient_kind: RecipientKind
    legal_basis: LegalBasis
    tables: Mapping[str, tuple[str, ...]]
    window_start: date
    window_end: date
    expires_on: date
    person_id: str = field(repr=False, default="")
    protection: OutputProtection = DEFAULT_PROTECTION

    def allows(self, table: str, column: str) -> bool:
        return column in self.tables.get(table, ())

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "slug": self.slug,
            "organisation": self.organisation,
            "purpose": self.purpose.value,
            "recipient_kind": self.recipient_kind.value,
            "legal_basis": self.legal_basis.value,
            "tables": {t: list(c) for t, c in self.tables.items()},
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "protection": self.protection.as_dict(),
        }
