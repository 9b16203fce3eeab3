"""Operators' look-ups of a person: the role is required, a reason too, and every look-up is
logged before anything is shown, naming the operator and never the person."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from operators import NOT_OPERATOR, ORG, add_operator
from typer.testing import CliRunner

from confide.choices import cli as choices_cli
from confide.common.home import Home
from confide.ledger.entries import find_identifiers
from confide.ledger.log import Ledger

NUMBER = "9434765919"


def _app() -> typer.Typer:
    app = typer.Typer()
    choices_cli.mount(app)
    return app


def _log(root: Path) -> list:
    with Ledger.open(Home.at(root)) as ledger:
        size = ledger.head().size
        return [e for e in ledger.decoded(0, size) if e.kind == "person_lookup"] if size else []


def test_lookups_need_the_operator_role_and_are_logged_without_the_person(
    opstore, tmp_path
) -> None:
    root = tmp_path / "h"
    home = ["--home", str(root)]
    runner = CliRunner()
    app = _app()
    runner.invoke(app, ["choices", "set", "--nhs-number", NUMBER, "--no-research", *home])
    operator = add_operator(root)
    for command, what in (("history", "choices_history"), ("show", "choices")):
        shown = runner.invoke(
            app, ["choices", command, "--nhs-number", NUMBER, "--json", *operator, *home]
        )
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)
        assert _log(root)[-1].body["what"] == what
    before = len(_log(root))
    for options, words in (
        ([*operator[:1], NOT_OPERATOR, *operator[2:]], "Only operators"),
        ([*operator[:1], "nobody@service.example", *operator[2:]], ""),
        ([*operator[:5], f"asked about {NUMBER}"], "NHS number"),
        ([*operator[:5], "<b>why</b>"], "HTML"),
    ):
        refused = runner.invoke(
            app, ["choices", "history", "--nhs-number", NUMBER, *options, *home]
        )
        assert refused.exit_code != 0 and words in refused.output
        assert "no_research" not in refused.output  # nothing shown
    assert len(_log(root)) == before  # refused look-ups log nothing and show nothing
    for entry in _log(root):
        assert entry.body["organisation"] == ORG and entry.body["operator"]
        assert not find_identifiers(entry.body) and NUMBER not in json.dumps(entry.body)
    missing = runner.invoke(app, ["choices", "history", "--nhs-number", NUMBER, *home])
    assert missing.exit_code == 2  # the operator options are required
