"""``confide --help`` and ``confide version`` stay fast by importing nothing heavy.

Speed itself is measured in benchmarks/bench_startup.py; here the structure that gives it is
checked: which modules those commands import, and that the quick listing and the lazily loaded
commands agree with the commands themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from confide.cli.lazy import PARTY_COMMANDS, load
from confide.cli.main import app
from confide.cli.quick import EAGER_COMMANDS, commands

HEAVY = ("duckdb", "sqlalchemy", "pyarrow", "splink", "fastapi", "numpy", "pydantic")


def _imported(*args: str) -> set[str]:
    """Modules a fresh ``python -m confide ARGS`` imports (from ``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "confide", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }


@pytest.mark.parametrize("args", [["--help"], ["version"]])
def test_help_and_version_import_no_party_and_no_heavy_library(args) -> None:
    modules = _imported(*args)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    parties = sorted(
        m for m in modules if m.startswith("confide.") and m.split(".")[1] not in ("cli",)
    )
    assert heavy == [] and parties == [], (heavy, parties)


def test_the_quick_listing_is_the_command_tree() -> None:
    """Every command the parties register is listed, with its own one-line help."""
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="confide")
    registered: dict[str, str] = {}
    for module in {p.module for p in PARTY_COMMANDS.values()}:
        group = load(module)
        inner = typer.Context(group, info_name="confide")
        for name in group.list_commands(inner):
            registered[name] = group.get_command(inner, name).get_short_help_str(limit=1000)
    for name, text in EAGER_COMMANDS.items():
        assert root.get_command(ctx, name).get_short_help_str(limit=1000) == text
    assert {n: p.help for n, p in PARTY_COMMANDS.items()} == registered
    assert list(commands()) == list(root.list_commands(ctx))


def test_quick_help_names_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "confide", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    for name, text in commands().items():
        assert name in result.stdout and text in result.stdout
