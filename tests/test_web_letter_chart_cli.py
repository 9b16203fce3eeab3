"""The GP letter PDF, the server-side chart and the ``confide serve`` command."""

from __future__ import annotations

import re
import zlib
from datetime import date
from xml.etree import ElementTree

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_seed import build_home, csrf_of

from confide.common.errors import InvalidInput
from confide.web import cli
from confide.web.chart import Series, line_chart
from confide.web.letter import LetterDetails, printable, render_pdf


def pdf_text(data: bytes) -> str:
    """The text drawn in a PDF made by fpdf2 (its content streams, inflated)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "".join(out)


def test_letter_pdf_holds_the_request():
    details = LetterDetails(
        name="Zoë Example",
        address="1 High Street\nLeeds",
        birth_date=date(1970, 2, 1),
        practice="High Street Surgery",
        nhs_number="9434765919",
    )
    data = render_pdf(details, date(2026, 3, 4))
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for expected in (
        "Zo",
        "High Street Surgery",
        "827241000000103",
        "9Nu0",
        "943 476 5919",
        "04 March 2026",
        "type 1",
    ):
        assert expected in text


def test_letter_asks_for_every_choice_chosen():
    from confide.choices.model import Choice

    details = LetterDetails(
        name="Ann Example",
        address="1 High Street",
        birth_date=date(1970, 2, 1),
        practice="High Street Surgery",
        choices=frozenset({Choice.NO_RESEARCH, Choice.NO_COMMERCIAL}),
    )
    text = pdf_text(render_pdf(details, date(2026, 3, 4)))
    assert "Do not use my data for research" in text
    assert "commercial companies" in text and "for planning" not in text
    assert "827241000000103" not in text  # no type 1 code unless share nothing is chosen
    everything = LetterDetails(**{**details.__dict__, "choices": frozenset(Choice)})
    all_text = pdf_text(render_pdf(everything, date(2026, 3, 4)))
    assert "827241000000103" in all_text and "for planning" in all_text


def test_letter_refuses_what_it_cannot_print():
    with pytest.raises(InvalidInput, match="cannot print"):
        printable("Łukasz", "full name")
    assert printable("Zoë", "full name") == "Zoë"


def test_letter_over_http(tmp_path):
    seeded = build_home(tmp_path / "home", people=3)
    try:
        with TestClient(seeded.app(), base_url="https://testserver") as http:
            token = csrf_of(http.get("/gp-letter").text)
            form = {
                "csrf_token": token,
                "name": "Alex Example",
                "address": "1 High St",
                "birth[day]": "1",
                "birth[month]": "2",
                "birth[year]": "1970",
                "practice": "High Street Surgery",
            }
            response = http.post("/gp-letter", data=form)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["cache-control"] == "no-store"
        assert "attachment" in response.headers["content-disposition"]
        assert "Alex Example" in pdf_text(response.content)
        assert not (seeded.home.root / "outbox").exists()  # nothing kept, nothing sent
    finally:
        seeded.close()


def test_chart_is_valid_svg_with_gaps_and_labels():
    svg = line_chart(
        "Title <b>",
        "Desc",
        ["2026-01", "2026-02", "2026-03"],
        [Series("No research", [10, None, 20]), Series("No planning", [5, 15, 25])],
    )
    root = ElementTree.fromstring(str(svg))
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img"
    assert root.find(f"{ns}title").text == "Title <b>"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == 1  # the suppressed month breaks the first series; the second is whole
    assert all(e.get("style") is None for e in root.iter())


def test_serve_is_registered_and_refuses_public_demo():
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """root"""

    cli.mount(app)
    runner = CliRunner()
    assert "--port" in runner.invoke(app, ["serve", "--help"]).output
    refused = runner.invoke(app, ["serve", "--demo", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "this machine only" in " ".join(refused.output.split())
