"""The "Ask my GP instead" letter: a completed type 1 objection as a PDF to print or send.

The letter asks the practice to add the type 1 dissent code to the person's GP record (the
codes come from :mod:`confide.common.codes`, the one table of them). It is made in memory and
returned at once: nothing the person typed is stored or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fpdf import FPDF

from confide.choices.model import Choice
from confide.common.codes import TYPE1_DISSENT
from confide.common.errors import InvalidInput

MARGIN = 20  # millimetres
_ENCODING = "latin-1"  # the PDF core fonts' character set


@dataclass(frozen=True)
class LetterDetails:
    """What the person gave (already trimmed and length-checked by the form)."""

    name: str
    address: str
    birth_date: date
    practice: str
    nhs_number: str | None = None
    practice_address: str = ""
    choices: frozenset[Choice] = frozenset({Choice.SHARE_NOTHING})


# What the letter asks for each choice other than share nothing (which is the type 1 code).
ASKS = {
    Choice.NO_RESEARCH: "Do not use my data for research.",
    Choice.NO_PLANNING: "Do not use my data for planning.",
    Choice.NO_COMMERCIAL: "Do not let commercial companies use my data.",
}


def _code(system: str) -> str:
    return next(code for kind, code in TYPE1_DISSENT if kind == system)


def printable(text: str, what: str) -> str:
    """``text`` if the letter's font can print it, else InvalidInput naming the field."""
    try:
        text.encode(_ENCODING)
    except UnicodeEncodeError:
        raise InvalidInput(
            f"The {what} has characters this letter cannot print.",
            hint="Use the letters A to Z (accents such as é are fine), or leave it out and "
            "write it by hand on the printed letter.",
        ) from None
    return text


def letter_title(details: LetterDetails) -> str:
    if Choice.SHARE_NOTHING in details.choices:
        return "Request to record a type 1 opt-out"
    return "Request to record my choices about my data"


def letter_paragraphs(details: LetterDetails) -> list[str]:
    """The body of the letter, one paragraph each: the type 1 code for share nothing, and
    the other choices for the practice to record in Confide for the person."""
    paragraphs = ["Dear Practice Manager,"]
    if Choice.SHARE_NOTHING in details.choices:
        snomed, read2 = _code("snomed"), _code("read2")
        paragraphs += [
            "Please record that I object to my personal confidential information leaving this "
            "practice for any purpose other than my direct care. This is known as a type 1 "
            "opt-out.",
            "Please add this code to my GP record: 'Dissent from secondary use of GP patient "
            f"identifiable data' (SNOMED CT {snomed}; Read v2 {read2}).",
        ]
    asks = [ASKS[c] for c in ASKS if c in details.choices]
    if asks:
        paragraphs.append(
            "Please record these choices for me in Confide, the service that holds patients' "
            "choices about research and planning (by letter, dated today):\n"
            + "\n".join(f"- {ask}" for ask in asks)
        )
    paragraphs += [
        "I understand that this does not affect the care I receive, and that I can change "
        "these choices at any time by asking the practice.",
        "Please confirm to me when this has been done.",
        "Yours faithfully,",
    ]
    return paragraphs


def _identity_lines(details: LetterDetails) -> list[str]:
    lines = [f"Name: {details.name}", f"Date of birth: {details.birth_date:%d %B %Y}"]
    if details.nhs_number:
        n = details.nhs_number
        lines.append(f"NHS number: {n[:3]} {n[3:6]} {n[6:]}")
    return lines


def render_pdf(details: LetterDetails, today: date) -> bytes:
    """The letter as PDF bytes (A4, one page for any input the form accepts)."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title(letter_title(details))
    pdf.set_creator("Confide")
    pdf.set_auto_page_break(auto=True, margin=MARGIN)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.add_page()
    width = pdf.w - 2 * MARGIN

    def block(text: str, *, size: int = 11, style: str = "", gap: float = 4) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, 5.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    block(f"{details.name}\n{details.address}", gap=6)
    block(f"{today:%d %B %Y}", gap=6)
    recipient = "The Practice Manager\n" + details.practice
    if details.practice_address:
        recipient += "\n" + details.practice_address
    block(recipient, gap=8)
    block(letter_title(details), size=13, style="B")
    block("\n".join(_identity_lines(details)), style="B", gap=6)
    for paragraph in letter_paragraphs(details):
        block(paragraph)
    pdf.ln(12)
    block("Signed: ______________________________", gap=2)
    block(details.name, gap=10)
    block(
        "If you are writing for a child under 13, sign as their parent or guardian and add "
        "your own name. Keep a copy of this letter.",
        size=9,
    )
    return bytes(pdf.output())
