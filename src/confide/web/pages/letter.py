"""'Ask my GP instead': a form that returns the completed type 1 objection letter as a PDF.

No sign-in is needed and nothing is kept: the details go into the PDF and nowhere else.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from confide.choices.model import Choice, utc
from confide.common import nhs_number as nhs
from confide.common.errors import InvalidInput
from confide.web.forms import (
    Form,
    clean_text,
    error_summary,
    kept,
    parse_date_parts,
    posted_form,
)
from confide.web.letter import ASKS, LetterDetails, printable, render_pdf
from confide.web.rendering import render
from confide.web.wording import BY_CHOICE

router = APIRouter(include_in_schema=False)

# field id -> (form name, what it is called in messages, limit, multiline, required)
FIELDS = {
    "name": ("name", "full name", 100, False, True),
    "address": ("address", "address", 300, True, True),
    "practice": ("practice", "GP practice name", 120, False, True),
    "practice-address": ("practice_address", "GP practice address", 300, True, False),
}
MAX_LINES = 6
LETTER_CHOICES = [BY_CHOICE[c] for c in (Choice.SHARE_NOTHING, *ASKS)]


TYPED = {
    **{name: limit for name, _what, limit, _multi, _req in FIELDS.values()},
    "nhs_number": 40,
    "birth[day]": 4,
    "birth[month]": 4,
    "birth[year]": 4,
}


def _page(
    request: Request,
    errors: dict[str, str] | None = None,
    status: int = 200,
    form: Form | None = None,
) -> Response:
    anchors = {"birth-date": "birth-date-day", "choices": "choices"}
    summary = error_summary(errors or {}, anchors)
    typed = kept(form, TYPED) if form is not None else {}
    ticked = set(form.all("choices")) if form is not None else {Choice.SHARE_NOTHING.value}
    items = [
        {
            "value": words.choice.value,
            "text": words.label,
            "checked": words.choice.value in ticked,
        }
        for words in LETTER_CHOICES
    ]
    return render(
        request,
        "gp-letter.html",
        {"errors": summary, "field_errors": errors or {}, "typed": typed, "choices": items},
        status_code=status,
    )


def _details(form: Form) -> tuple[LetterDetails | None, dict[str, str]]:
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for field, (name, what, limit, multiline, required) in FIELDS.items():
        try:
            text = printable(clean_text(form.get(name), limit=limit, multiline=multiline), what)
        except InvalidInput as exc:
            errors[field] = f"The {what}: {exc.message[0].lower()}{exc.message[1:]}"
            continue
        if required and not text:
            errors[field] = f"Enter the {what}"
        elif multiline and text.count("\n") >= MAX_LINES:
            errors[field] = f"The {what} must be {MAX_LINES} lines or fewer"
        values[field] = text
    try:
        birth = parse_date_parts(
            form.get("birth[day]"),
            form.get("birth[month]"),
            form.get("birth[year]"),
            today=utc(None).date(),
        )
    except InvalidInput as exc:
        errors["birth-date"] = exc.message
        birth = None
    # Nothing ticked: the letter's first purpose, a type 1 opt-out (also for older clients
    # that send no choices at all).
    chosen = {c for c in Choice if c.value in form.all("choices")} or {Choice.SHARE_NOTHING}
    raw_number = form.get("nhs_number")
    number = None
    if raw_number.strip():
        if len(raw_number) > 40 or nhs.why_invalid(raw_number):
            errors["nhs-number"] = "Enter a valid 10-digit NHS number, or leave it blank"
        else:
            number = nhs.normalise(raw_number)
    if errors or birth is None:
        return None, errors
    return (
        LetterDetails(
            name=values["name"],
            address=values["address"],
            birth_date=birth,
            practice=values["practice"],
            nhs_number=number,
            practice_address=values.get("practice-address", ""),
            choices=frozenset(chosen),
        ),
        errors,
    )


@router.get("/gp-letter")
def letter_page(request: Request) -> Response:
    return _page(request)


@router.post("/gp-letter")
def letter_pdf(request: Request, form: Form = Depends(posted_form)) -> Response:
    details, errors = _details(form)
    if details is None:
        return _page(request, errors, 422, form)
    return Response(
        render_pdf(details, utc(None).date()),
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'attachment; filename="type-1-opt-out-letter.pdf"',
            "Cache-Control": "no-store",
        },
    )
