"""Notices as letters: one PDF per patient, or a practice's batch in one PDF to print.

The letter is made in memory from the practice's own recipient list; it stays at the
practice (name and address never leave it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from fpdf import FPDF

from confide.rollout import wording

MARGIN = 20  # millimetres
_ENCODING = "latin-1"  # the PDF core fonts' character set


@dataclass(frozen=True)
class Recipient:
    """One patient to tell, from the practice's list (never stored by Confide)."""

    nhs_number: str
    name: str
    address: tuple[str, ...]
    email: str | None = None
    channel: str = "letter"


def _printable(text: str) -> str:
    """Characters the core font cannot print become '?', so one odd name never stops a batch."""
    return text.encode(_ENCODING, errors="replace").decode(_ENCODING)


def _new_pdf() -> FPDF:
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title(wording.SUBJECT)
    pdf.set_creator("Confide")
    pdf.set_auto_page_break(auto=True, margin=MARGIN)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    return pdf


def _page(pdf: FPDF, who: Recipient, practice: str, sent_on: date, weeks: int) -> None:
    pdf.add_page()
    width = pdf.w - 2 * MARGIN

    def block(text: str, *, size: int = 10, style: str = "", gap: float = 2.5) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, 4.8, _printable(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    block("\n".join((who.name, *who.address)), gap=5)
    n = who.nhs_number
    block(f"{sent_on:%d %B %Y}\nNHS number: {n[:3]} {n[3:6]} {n[6:]}", gap=5)
    block(wording.SUBJECT, size=13, style="B", gap=4)
    for paragraph in wording.paragraphs(practice, sent_on, weeks):
        block(paragraph)


def letter_pdf(who: Recipient, practice: str, sent_on: date, weeks: int) -> bytes:
    """One patient's letter."""
    pdf = _new_pdf()
    _page(pdf, who, practice, sent_on, weeks)
    return bytes(pdf.output())


def batch_pdf(people: Iterable[Recipient], practice: str, sent_on: date, weeks: int) -> bytes:
    """A practice's batch: each patient's letter on its own page, in the order given."""
    pdf = _new_pdf()
    for who in people:
        _page(pdf, who, practice, sent_on, weeks)
    return bytes(pdf.output())
