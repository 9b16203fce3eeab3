"""``--token`` is defined once (confide.cli.options), so every command group takes it alike."""

from __future__ import annotations

import ast

from source_rules import SRC, offending_lines, stale_exceptions

THE_DEFINITION = "cli/options.py"

# Command modules still defining --token themselves while they move to confide.cli.options.
# Empty this set as they move.
NOT_YET_MOVED: set[str] = set()


def _token_definitions(source: str) -> list[int]:
    """Lines where the string ``"--token"`` is written (an option being declared)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value == "--token"
    ]


def test_the_scan_finds_a_token_option() -> None:
    source = 'import typer\nOpt = typer.Option(\n    "--token", envvar="X")\n'
    assert _token_definitions(source) == [3]
    assert _token_definitions("from confide.cli.options import TokenOption\n") == []


def test_only_the_options_module_defines_token() -> None:
    found = offending_lines(_token_definitions, NOT_YET_MOVED | {THE_DEFINITION})
    assert not found, f"use confide.cli.options.TokenOption instead: {sorted(found)}"


def test_the_options_module_defines_it() -> None:
    assert _token_definitions((SRC / THE_DEFINITION).read_text())


def test_the_not_yet_moved_list_names_only_modules_that_still_need_it() -> None:
    stale = stale_exceptions(_token_definitions, NOT_YET_MOVED)
    assert not stale, f"remove from NOT_YET_MOVED: {sorted(stale)}"
