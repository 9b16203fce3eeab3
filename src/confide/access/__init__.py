"""The access party: organisations, people, roles, projects and their approval.

It answers one question for the rest of Confide: who may do what, for what purpose, on what
legal basis. It holds no health data. The TRE asks it for a :class:`ProjectGrant` before any
query runs (:meth:`Access.authorise_query`); everything it decides is also told to its
``listeners`` so the transparency ledger can record it.
"""

from confide.access.errors import Conflict, Forbidden, Unauthenticated
from confide.access.model import (
    LegalBasis,
    Principal,
    Project,
    ProjectApplication,
    ProjectGrant,
    ProjectStatus,
    Purpose,
    RecipientKind,
    Role,
)
from confide.access.service import Access

__all__ = [
    "Access",
    "Conflict",
    "Forbidden",
    "LegalBasis",
    "Principal",
    "Project",
    "ProjectApplication",
    "ProjectGrant",
    "ProjectStatus",
    "Purpose",
    "RecipientKind",
    "Role",
    "Unauthenticated",
]
