"""Every command and option is documented: docs/cli.md is the generated reference, kept current."""

from __future__ import annotations

from pathlib import Path

from confide.cli.reference import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_the_cli_reference_is_current() -> None:
    assert DOC.read_text() == render(), (
        "docs/cli.md is stale: run `python -m confide.cli.reference > docs/cli.md`"
    )


def test_every_command_has_help_text() -> None:
    text = render()
    blocks = text.split("\n#")[1:]
    for block in blocks:
        heading, _, rest = block.partition("\n")
        assert rest.strip(), f"{heading.strip()} has no help text"
