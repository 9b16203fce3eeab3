"""Reading web forms defensively: bounded size, bounded fields, clear messages, no echoes.

Forms are read by hand rather than by the framework so that every refusal (too big, not a
web form, not UTF-8, a field too long) has a message a patient can act on, and so that no
value a person typed ever appears in a message (it may be an NHS number).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qsl

from starlette.requests import Request

from confide.common.errors import InvalidInput
from confide.common.text import CONTROL_CHARS as _CONTROL
from confide.common.text import clean_text as clean_text  # the pages import it from here
from confide.web.security import CSRF_FIELD, check_csrf

MAX_BODY = 16 * 1024
MAX_FIELDS = 40
FORM_TYPE = "application/x-www-form-urlencoded"


class BodyTooLarge(InvalidInput):
    """A form bigger than any of ours can be."""


@dataclass
class Form:
    """A submitted form: every value of every field, as text."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str:
        """The first value of ``name`` ("" when absent)."""
        return (self.values.get(name) or [""])[0]

    def all(self, name: str) -> list[str]:
        return list(self.values.get(name, []))


async def read_form(request: Request, *, csrf: bool = True, max_fields: int = MAX_FIELDS) -> Form:
    """The posted form, after size, type, encoding and (by default) CSRF checks."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise BodyTooLarge("The form sent was too large, so it was not read. Nothing changed.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise InvalidInput(
            "The form was not sent the way this website's own pages send it. Nothing changed.",
            hint="Use the form on the page.",
        )
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            raise BodyTooLarge("The form sent was too large, so it was not read. Nothing changed.")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "The form could not be read. Nothing changed.", hint="Use the form on the page."
        ) from None
    form = Form()
    for name, value in pairs:
        form.values.setdefault(name, []).append(value)
    if csrf:
        check_csrf(request, form.get(CSRF_FIELD))
    return form


def kept(form: Form, names: dict[str, int]) -> dict[str, str]:
    """What was typed, to show again when the form comes back with an error (nobody should
    retype the fields that were right). Cut to each field's limit, without control characters;
    the template escapes it like any other text."""
    out: dict[str, str] = {}
    for name, limit in names.items():
        text = unicodedata.normalize("NFC", form.get(name)).replace("\r\n", "\n")
        out[name] = _CONTROL.sub("", text)[:limit]
    return out


def parse_date_parts(day: str, month: str, year: str, *, today: date) -> date:
    """A past date from the NHS date-input's three boxes, or InvalidInput saying what is wrong."""
    parts = [p.strip() for p in (day, month, year)]
    if not all(parts):
        raise InvalidInput("Enter the date of birth, including a day, month and year.")
    if not all(p.isdigit() and len(p) <= 4 for p in parts) or len(parts[2]) != 4:
        raise InvalidInput("The date of birth must be numbers, for example 15 3 1984.")
    try:
        value = date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        raise InvalidInput("The date of birth must be a real date.") from None
    if value > today:
        raise InvalidInput("The date of birth must be in the past.")
    if value.year < 1880:
        raise InvalidInput("Check the year of the date of birth.")
    return value


def error_summary(
    errors: dict[str, str], anchors: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """The error summary's list: each message links to its field (or, through ``anchors``,
    to the field's first input, e.g. a date's day box)."""
    anchors = anchors or {}
    return [{"text": m, "href": f"#{anchors.get(f, f)}"} for f, m in errors.items()]


async def posted_form(request: Request) -> Form:
    """The form as a dependency: read here, on the event loop, so the handler can be a plain
    ``def`` that FastAPI runs in its worker pool (a slow database or query then blocks one
    worker, never every page)."""
    return await read_form(request)


LONG_FORM_FIELDS = 80  # the application form has one box per column of data


async def posted_long_form(request: Request) -> Form:
    """``posted_form`` for the long application form."""
    return await read_form(request, max_fields=LONG_FORM_FIELDS)
