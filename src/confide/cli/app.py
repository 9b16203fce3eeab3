"""The ``confide`` command tree: the root group, with party commands loaded when used.

Imported only when a command must actually be parsed; ``--help`` and ``version`` are answered
without it (:mod:`confide.cli.quick`).
"""

from __future__ import annotations

import typer

from confide import __version__
from confide.cli.lazy import LazyGroup
from confide.cli.quick import ROOT_HELP

app = typer.Typer(
    name="confide",
    cls=LazyGroup,
    help=ROOT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Confide: GP and hospital records for NHS planning and research."""


@app.command("version")
def version() -> None:
    """Print Confide's version."""
    typer.echo(__version__)
