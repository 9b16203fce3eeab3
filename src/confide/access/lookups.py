"""Operators looking a person up (a usage report, a choices history): only with the operator
role, and every look-up recorded in the transparency log before anything is shown.

The log entry names the operator (their access-party id), their organisation, what was looked
at and why: never the person. So anyone can count how often people are looked up, and by
whom, without learning who was looked up.
"""

from __future__ import annotations

from typing import Protocol

from confide.access.errors import Forbidden
from confide.access.model import Role
from confide.access.public_text import public_text
from confide.access.service import Access

LOOKUPS = ("usage_report", "choices_history", "choices")
REASON_MAX = 200


class Log(Protocol):
    def append(self, kind: str, body: dict[str, object]) -> int: ...


def record_lookup(
    access: Access, log: Log, *, organisation: str, email: str, what: str, reason: str
) -> int:
    """Check the operator's role and log the look-up; returns the log index. Raises
    Forbidden (nothing logged, nothing shown) when the person is not an operator there."""
    if what not in LOOKUPS:
        raise ValueError(f"unknown look-up {what!r}")
    why = public_text(reason, what="The reason", limit=REASON_MAX)
    if not why:
        raise Forbidden(
            "A reason is needed to look a person up.",
            hint="Give the reason, for example: subject access request.",
        )
    who = access.principal_for(organisation, email)
    if Role.OPERATOR not in who.roles:
        raise Forbidden(
            "Only operators may look a person up.",
            hint="Ask an administrator of your organisation for the operator role.",
        )
    return log.append(
        "person_lookup",
        {
            "what": what,
            "organisation": who.organisation,
            "operator": who.person_id,
            "reason": why,
        },
    )
