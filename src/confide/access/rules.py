"""Which applications may be made at all: purpose, recipient, legal basis, data and dates.

One small declarative table per question, so a reviewer can read the whole policy here and a
correction is a one-line change. These rules decide whether an application is acceptable; the
approving body still decides whether it is approved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from confide.access.model import (
    LegalBasis,
    ProjectApplication,
    Purpose,
    RecipientKind,
    parse_legal_basis,
    parse_purpose,
    parse_recipient_kind,
)
from confide.access.public_text import public_text
from confide.common.errors import InvalidInput
from confide.hub.records import RECORD_SCHEMAS

_N, _A, _C, _X = (
    RecipientKind.NHS,
    RecipientKind.ACADEMIC,
    RecipientKind.CHARITY,
    RecipientKind.COMMERCIAL,
)

REFUSED_PURPOSES: dict[Purpose, str] = {
    Purpose.INSURANCE: "Confide never supplies data for insurance purposes, to anyone, on any "
    "legal basis: patients were promised that insurers cannot buy access to their records.",
    Purpose.MARKETING: "Confide never supplies data for marketing, to anyone, on any legal "
    "basis: patients were promised that their records are not sold for promotion.",
}

# Which kinds of organisation may pursue each (acceptable) purpose.
PURPOSE_RECIPIENTS: dict[Purpose, frozenset[RecipientKind]] = {
    Purpose.RESEARCH: frozenset({_N, _A, _C, _X}),
    Purpose.PUBLIC_HEALTH: frozenset({_N, _A, _C}),
    Purpose.PLANNING: frozenset({_N}),
    Purpose.COMMISSIONING: frozenset({_N}),
    Purpose.DIRECT_CARE_AUDIT: frozenset({_N}),
}


@dataclass(frozen=True)
class BasisRule:
    purposes: frozenset[Purpose]
    recipients: frozenset[RecipientKind]
    why: str


LEGAL_BASES: dict[LegalBasis, BasisRule] = {
    LegalBasis.PUBLIC_TASK: BasisRule(
        frozenset(PURPOSE_RECIPIENTS),
        frozenset({_N, _A}),
        "public task is available only to public bodies (the NHS and universities)",
    ),
    LegalBasis.LEGITIMATE_INTERESTS: BasisRule(
        frozenset({Purpose.RESEARCH, Purpose.PUBLIC_HEALTH}),
        frozenset({_C, _X}),
        "legitimate interests is not available to public bodies for their tasks, and covers "
        "only research and public health",
    ),
    LegalBasis.CONSENT: BasisRule(
        frozenset({Purpose.RESEARCH}),
        frozenset({_N, _A, _C, _X}),
        "consent covers only a specific research study",
    ),
    LegalBasis.SECTION_251: BasisRule(
        frozenset(PURPOSE_RECIPIENTS),
        frozenset({_N, _A, _C, _X}),
        "section 251 support covers medical purposes only",
    ),
    LegalBasis.COPI_REG3: BasisRule(
        frozenset({Purpose.PUBLIC_HEALTH, Purpose.PLANNING, Purpose.RESEARCH}),
        frozenset({_N, _A}),
        "COPI regulation 3 covers communicable disease and public health risks, for the NHS "
        "and academic bodies",
    ),
}

SLUG = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
SLUG_MAX = 60
EARLIEST = date(1900, 1, 1)
MAX_TERM = timedelta(days=5 * 365 + 2)
TITLE_MAX = 200
SUMMARY_MAX = 4000
PATIENT_KEY = "pseudonym"


def _a(word: str) -> str:
    """``word`` with its indefinite article ("an nhs" is read "an N-H-S")."""
    return f"{'an' if word[0] in 'aeion' else 'a'} {word}"


def refusal_for_purpose(purpose: Purpose) -> str | None:
    """The reason a purpose is refused under every circumstance, or None."""
    return REFUSED_PURPOSES.get(purpose)


class Refusal(NamedTuple):
    """Why a combination may not be applied for, and what would fit instead."""

    reason: str
    hint: str


def why_not_allowed(
    purpose: Purpose, recipient: RecipientKind, basis: LegalBasis
) -> Refusal | None:
    """The :class:`Refusal` when this combination may not be applied for, else None."""
    refused = refusal_for_purpose(purpose)
    if refused:
        return Refusal(refused, "No other purpose, recipient or legal basis changes this.")
    kinds = PURPOSE_RECIPIENTS[purpose]
    if recipient not in kinds:
        allowed = ", ".join(sorted(k.value for k in kinds))
        return Refusal(
            f"{_a(recipient.value).capitalize()} organisation may not apply for {purpose.value}.",
            f"Organisations that may: {allowed}.",
        )
    rule = LEGAL_BASES[basis]
    if purpose not in rule.purposes or recipient not in rule.recipients:
        usable = sorted(
            b.value
            for b, r in LEGAL_BASES.items()
            if purpose in r.purposes and recipient in r.recipients
        )
        return Refusal(
            f"The legal basis {basis.value} does not fit {purpose.value} by "
            f"{_a(recipient.value)} organisation: {rule.why}.",
            f"Legal bases that fit: {', '.join(usable) or 'none'}.",
        )
    return None


def checked_slug(raw: str) -> str:
    slug = raw.strip().lower()
    if not (3 <= len(slug) <= SLUG_MAX) or not SLUG.match(slug):
        raise InvalidInput(
            f"The project name {raw[:SLUG_MAX]!r} is not usable.",
            hint=f"Use 3 to {SLUG_MAX} lower-case letters, digits and single hyphens, "
            "starting with a letter (e.g. diabetes-outcomes-2025).",
        )
    return slug


def slug_from_title(title: str) -> str:
    """A project name made from its title (the service adds a suffix if it is taken)."""
    limit = SLUG_MAX - 7
    slug = "-".join(re.findall(r"[a-z0-9]+", title.lower()))[:limit].strip("-")
    if len(slug) < 3 or not slug[0].isalpha():
        slug = f"project-{slug}"[:limit].strip("-")
    return slug


def checked_datasets(requested: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The requested tables and columns, checked against the record store, in schema order.

    ``["*"]`` asks for every column of a table. The patient key cannot be asked for: every
    view carries the project's own pseudonym instead.
    """
    if not isinstance(requested, Mapping) or not requested:
        raise InvalidInput(
            "The application asks for no data.",
            hint="List the tables and columns needed, e.g. {'events': ['code', 'date']}.",
        )
    out: dict[str, tuple[str, ...]] = {}
    for table in sorted(requested, key=lambda t: (t not in RECORD_SCHEMAS, str(t))):
        if table not in RECORD_SCHEMAS:
            raise InvalidInput(
                f"There is no table {str(table)[:40]!r} in the record store.",
                hint=f"Tables: {', '.join(RECORD_SCHEMAS)}.",
            )
        available = [n for n in RECORD_SCHEMAS[table].names if n != PATIENT_KEY]
        raw = requested[table]
        if isinstance(raw, str) or not isinstance(raw, Sequence):
            raise InvalidInput(f"The columns of {table} must be a list of column names.")
        wanted = set(available) if "*" in raw else {str(c) for c in raw}
        if PATIENT_KEY in wanted:
            raise InvalidInput(
                f"{table}.{PATIENT_KEY} cannot be requested.",
                hint="Every project view already carries the project's own patient pseudonym.",
            )
        unknown = sorted(wanted - set(available))
        if unknown:
            raise InvalidInput(
                f"The table {table} has no column {unknown[0][:40]!r}.",
                hint=f"Columns of {table}: {', '.join(available)}.",
            )
        if not wanted:
            raise InvalidInput(f"No columns were requested from {table}.")
        out[table] = tuple(n for n in available if n in wanted)
    return out


@dataclass(frozen=True)
class CheckedApplication:
    slug: str | None
    title: str
    summary: str
    purpose: Purpose
    recipient_kind: RecipientKind
    legal_basis: LegalBasis
    datasets: dict[str, tuple[str, ...]]
    window_start: date
    window_end: date
    expires_on: date


def check_terms(
    app: ProjectApplication, organisation_kind: RecipientKind
) -> tuple[Purpose, RecipientKind, LegalBasis]:
    """Purpose, recipient kind and legal basis, parsed (refusals raised by the caller)."""
    purpose = parse_purpose(app.purpose)
    recipient = (
        organisation_kind
        if app.recipient_kind in (None, "")
        else parse_recipient_kind(app.recipient_kind)
    )
    if recipient is not organisation_kind:
        raise InvalidInput(
            f"The recipient kind {recipient.value} does not match the applying organisation, "
            f"which is registered as {organisation_kind.value}.",
            hint="Leave the recipient kind out, or ask the administrators to correct the "
            "organisation's registration.",
        )
    return purpose, recipient, parse_legal_basis(app.legal_basis)


def check_application(
    app: ProjectApplication,
    purpose: Purpose,
    recipient: RecipientKind,
    basis: LegalBasis,
    today: date,
) -> CheckedApplication:
    """Everything else about an application whose terms are already acceptable."""
    title = public_text(app.title, what="The title", limit=TITLE_MAX)
    if len(title) < 3:
        raise InvalidInput(f"The title must be 3 to {TITLE_MAX} characters long.")
    summary = public_text(app.summary, what="The summary", limit=SUMMARY_MAX, multiline=True)
    for name in ("window_start", "window_end", "expires_on"):
        value = getattr(app, name)
        if not isinstance(value, date) or isinstance(value, datetime):
            raise InvalidInput(f"{name} must be a date (YYYY-MM-DD).")
    if app.window_start < EARLIEST or app.window_start > app.window_end:
        raise InvalidInput(
            "The date window is not valid.",
            hint=f"window_start must be on or after {EARLIEST} and not after window_end.",
        )
    if app.expires_on <= today or app.expires_on > today + MAX_TERM:
        raise InvalidInput(
            "The expiry date must be in the future and at most five years ahead.",
            hint="Apply for a shorter term; a project can apply again before it expires.",
        )
    return CheckedApplication(
        slug=checked_slug(app.slug) if app.slug else None,
        title=title,
        summary=summary,
        purpose=purpose,
        recipient_kind=recipient,
        legal_basis=basis,
        datasets=checked_datasets(app.datasets),
        window_start=app.window_start,
        window_end=app.window_end,
        expires_on=app.expires_on,
    )
