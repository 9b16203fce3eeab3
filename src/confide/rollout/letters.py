"""Notices as letters: one PDF per patient, or a practice's batch in one PDF to print.

The letter is made in memory from the practice's own recipient list; it stays at the
practice (name and address never leave it).
"""

from __future__ import annotations

import functools
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


_LINE = 4.8  # millimetres
Line = tuple[str, int, str, float]  # style, size, text, gap after


@functools.lru_cache(maxsize=64)
def _body(practice: str, sent_on: date, weeks: int) -> tuple[Line, ...]:
    """The notice's wrapped lines, laid out once per batch: the body is the same for every
    patient of a practice on a day, and wrapping text is most of a page's cost."""
    pdf = _new_pdf()
    pdf.add_page()
    width = pdf.w - 2 * MARGIN
    out: list[Line] = []
    blocks = [("B", 13, wording.SUBJECT, 4.0)]
    blocks += [("", 10, p, 2.5) for p in wording.paragraphs(practice, sent_on, weeks)]
    for style, size, text, gap in blocks:
        pdf.set_font("Helvetica", style=style, size=size)
        wrapped = pdf.multi_cell(width, _LINE, _printable(text), dry_run=True, output="LINES")
        lines: list[str] = list(wrapped)  # type: ignore[arg-type]  # LINES gives list[str]
        for i, line in enumerate(lines):
            out.append((style, size, line, gap if i == len(lines) - 1 else 0.0))
    return tuple(out)


def _page(pdf: FPDF, who: Recipient, body: tuple[Line, ...], sent_on: date) -> None:
    """One patient's page, written line by line at known positions (no wrapping here)."""
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    y = MARGIN + _LINE * 0.75
    n = who.nhs_number
    head = [_printable(line) for line in (who.name, *who.address)]
    for gap, lines in (
        (5.0, head),
        (5.0, [f"{sent_on:%d %B %Y}", f"NHS number: {n[:3]} {n[3:6]} {n[6:]}"]),
    ):
        for line in lines:
            pdf.text(MARGIN, y, line)
            y += _LINE
        y += gap
    current = ("", 10)
    for style, size, text, gap in body:
        if (style, size) != current:
            pdf.set_font("Helvetica", style=style, size=size)
            current = (style, size)
        if y > pdf.h - MARGIN:
            pdf.add_page()
            y = MARGIN + _LINE * 0.75
        pdf.text(MARGIN, y, text)
        y += _LINE + gap


def letter_pdf(who: Recipient, practice: str, sent_on: date, weeks: int) -> bytes:
    """One patient's letter."""
    pdf = _new_pdf()
    _page(pdf, who, _body(practice, sent_on, weeks), sent_on)
    return bytes(pdf.output())


def batch_pdf(people: Iterable[Recipient], practice: str, sent_on: date, weeks: int) -> bytes:
    """A practice's batch: each patient's letter on its own page, in the order given."""
    pdf = _new_pdf()
    body = _body(practice, sent_on, weeks)
    for who in people:
        _page(pdf, who, body, sent_on)
    return bytes(pdf.output())
