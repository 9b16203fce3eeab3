"""The access party's tables (SQLAlchemy Core), mirrored by ``migrations/versions/0001``.

Secrets never rest in clear: client secrets are stored as scrypt hashes with a per-secret salt,
bearer tokens (random, 256 bits) as SHA-256 digests. ``project_events`` is the append-only
audit trail of every decision on a project; ``approvals`` holds each approver's decision.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from confide.common.columns import SERIAL_ID, UTC_DATETIME
from confide.events.outbox import outbox_table

metadata = MetaData()


organisations = Table(
    "organisations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("slug", String(60), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("approving_body", Boolean, nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
)

people = Table(
    "people",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("created_at", UTC_DATETIME, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("person_id", String(32), ForeignKey("people.id"), primary_key=True),
    Column("organisation_id", String(32), ForeignKey("organisations.id"), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("granted_at", UTC_DATETIME, nullable=False),
)

api_clients = Table(
    "api_clients",
    metadata,
    Column("client_id", String(40), primary_key=True),
    Column("secret_hash", String(200), nullable=False),
    Column("organisation_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("person_id", String(32), ForeignKey("people.id"), nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("revoked_at", UTC_DATETIME, nullable=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(40), ForeignKey("api_clients.client_id"), nullable=False),
    Column("issued_at", UTC_DATETIME, nullable=False),
    Column("expires_at", UTC_DATETIME, nullable=False),
    Index("ix_tokens_expires_at", "expires_at"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("slug", String(60), nullable=False, unique=True),
    Column("organisation_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("purpose", String(24), nullable=False),
    Column("recipient_kind", String(16), nullable=False),
    Column("legal_basis", String(24), nullable=False),
    Column("datasets", JSON, nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("applicant_id", String(32), ForeignKey("people.id"), nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("protection", JSON, nullable=True),  # see confide.access.protection
    Index("ix_projects_organisation", "organisation_id"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", SERIAL_ID, primary_key=True, autoincrement=True),
    Column("project_id", String(32), ForeignKey("projects.id"), nullable=False),
    Column("approver_id", String(32), ForeignKey("people.id"), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTC_DATETIME, nullable=False),
    Column("protection", JSON, nullable=True),
    Index("ix_approvals_project", "project_id"),
)

project_events = Table(
    "project_events",
    metadata,
    Column("seq", SERIAL_ID, primary_key=True, autoincrement=True),
    Column("project_id", String(32), ForeignKey("projects.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor_id", String(32), ForeignKey("people.id"), nullable=True),
    Column("actor_role", String(16), nullable=True),
    Column("at", UTC_DATETIME, nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_project_events_project", "project_id", "seq"),
)

# Events for other parties (projects applied for, decided), written with the decision.
outbox = outbox_table(metadata)
