"""Reading the project application form: every field checked, every problem named by field.

The checks here are the ones a form can make (present, the right type, one of the options,
short enough, no markup, no identifier); whether the application is acceptable at all is the
access party's decision (:mod:`confide.access.rules`), and its message is shown as it is.
Text that will be published (titles, reasons) must never carry an identifier or markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from confide.access import rules
from confide.access.model import LegalBasis, ProjectApplication, Purpose, RecipientKind
from confide.access.public_text import public_text
from confide.common.errors import InvalidInput
from confide.hub.records import RECORD_SCHEMAS
from confide.web.forms import Form, clean_text, error_summary

PURPOSES = [p for p in Purpose if p not in rules.REFUSED_PURPOSES]
DATES = {
    "window_start": "the start of the date window",
    "window_end": "the end of the date window",
    "expires_on": "the expiry date",
}


def dataset_columns() -> dict[str, list[str]]:
    """Every table and column an application may ask for (never the patient key)."""
    return {
        table: [c for c in schema.names if c != rules.PATIENT_KEY]
        for table, schema in RECORD_SCHEMAS.items()
    }


def _date(form: Form, name: str, what: str) -> date:
    parts = [form.get(f"{name}[{p}]").strip() for p in ("day", "month", "year")]
    if not all(parts):
        raise InvalidInput(f"Enter {what}, including a day, month and year.")
    if not all(p.isascii() and p.isdigit() and len(p) <= 4 for p in parts) or len(parts[2]) != 4:
        raise InvalidInput(f"{what.capitalize()} must be numbers, for example 1 4 2025.")
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        raise InvalidInput(f"{what.capitalize()} must be a real date.") from None


def _choice(form: Form, name: str, kinds: list[Any]) -> Any:
    values = form.all(name)
    known = {k.value: k for k in kinds}
    if len(values) != 1 or values[0] not in known:
        raise InvalidInput("Choose one of the options shown.")
    return known[values[0]]


def _datasets(form: Form) -> dict[str, list[str]]:
    allowed = dataset_columns()
    chosen: dict[str, list[str]] = {}
    values = form.all("columns")
    for value in values:
        table, _, column = value.partition(".")
        if column not in allowed.get(table, []):
            raise InvalidInput("Choose columns from the lists shown.")
        chosen.setdefault(table, []).append(column)
    if not chosen:
        raise InvalidInput("Choose at least one column of data.")
    if len(values) != len(set(values)):
        raise InvalidInput("Choose columns from the lists shown.")
    return chosen


@dataclass
class ReadApplication:
    """The application (when every field was usable) or each field's problem."""

    application: ProjectApplication | None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


FIRST_INPUT = {
    "purpose": "purpose",
    "recipient_kind": "recipient-kind",
    "legal_basis": "legal-basis",
    "datasets": "datasets",
    "window_start": "window_start-day",
    "window_end": "window_end-day",
    "expires_on": "expires_on-day",
}


def error_list(errors: dict[str, str]) -> list[dict[str, str]]:
    """The error summary: each message links to its field's first input."""
    return error_summary(errors, FIRST_INPUT)


def read_application(form: Form) -> ReadApplication:
    """Every field of the form, checked; the form's values kept to show again."""
    errors: dict[str, str] = {}
    got: dict[str, Any] = {}
    values = {
        "title": form.get("title")[:200],
        "slug": form.get("slug")[:60],
        "summary": form.get("summary")[:4000],
        "purpose": form.get("purpose")[:40],
        "recipient_kind": form.get("recipient_kind")[:40],
        "legal_basis": form.get("legal_basis")[:40],
        "columns": set(form.all("columns")),
        **{f"{n}[{p}]": form.get(f"{n}[{p}]")[:4] for n in DATES for p in ("day", "month", "year")},
    }

    def take(name: str, read: Any) -> None:
        try:
            got[name] = read()
        except InvalidInput as exc:
            errors[name] = exc.message

    take("title", lambda: public_text(form.get("title"), what="The title", limit=rules.TITLE_MAX))
    if "title" in got and len(got["title"]) < 3:
        errors["title"] = "Enter a title of at least 3 characters."
    take("slug", lambda: _slug(form.get("slug")))
    take("purpose", lambda: _choice(form, "purpose", PURPOSES))
    take("recipient_kind", lambda: _choice(form, "recipient_kind", list(RecipientKind)))
    take("legal_basis", lambda: _choice(form, "legal_basis", list(LegalBasis)))
    take("datasets", lambda: _datasets(form))
    for name, what in DATES.items():
        take(name, lambda name=name, what=what: _date(form, name, what))
    take(
        "summary",
        lambda: public_text(
            form.get("summary"), what="The description", limit=rules.SUMMARY_MAX, multiline=True
        ),
    )
    if errors:
        return ReadApplication(None, errors, values)
    application = ProjectApplication(
        title=got["title"],
        slug=got["slug"] or None,
        purpose=got["purpose"],
        recipient_kind=got["recipient_kind"],
        legal_basis=got["legal_basis"],
        datasets=got["datasets"],
        window_start=got["window_start"],
        window_end=got["window_end"],
        expires_on=got["expires_on"],
        summary=got["summary"],
    )
    return ReadApplication(application, {}, values)


def _slug(raw: str) -> str:
    text = clean_text(raw[:200], limit=200)
    if not text:
        return ""
    if len(text) > rules.SLUG_MAX or not rules.SLUG.match(text.lower()):
        raise InvalidInput(
            f"The short name must be 3 to {rules.SLUG_MAX} lower-case letters, digits and single "
            "hyphens, starting with a letter (for example diabetes-outcomes-2025)."
        )
    return rules.checked_slug(text)


def field_of(message: str) -> str:
    """Which field a refusal from the access party is about (for the error summary link)."""
    text = message.lower()
    for needle, name in (
        ("legal basis", "legal_basis"),
        ("recipient", "recipient_kind"),
        ("may not apply for", "purpose"),
        ("project name", "slug"),
        ("window", "window_start"),
        ("expiry", "expires_on"),
        ("title", "title"),
        ("summary", "summary"),
    ):
        if needle in text:
            return name
    return "datasets"
