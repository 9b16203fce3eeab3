"""How every command reports: Rich for people, ``--json`` for programs, errors that say why.

Commands return a plain dict; :func:`report` prints it as JSON or hands it to a human renderer.
:func:`handle_errors` hands any exception to :mod:`confide.cli.failures`, the one handler: a
message on standard error (and a JSON object with ``error`` under ``--json``) and the exit code
of its class, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

console = Console(stderr=False)
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Folder holding all state (default: $CONFIDE_HOME or ./.confide).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable JSON result on standard output.")
]


def report(result: dict[str, Any], as_json: bool, human: Callable[[dict], None]) -> None:
    """Print ``result`` as one JSON document, or as text for a person."""
    if as_json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2, default=str).decode())
        sys.stdout.write("\n")
    else:
        human(result)


def handle_errors(func: Callable) -> Callable:
    """Decorator for commands: any exception → clear message and the exit code of its class."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SystemExit, typer.Exit):
            raise
        except BaseException as exc:  # the one handler decides for every class
            from confide.cli.failures import fail

            fail(exc, bool(kwargs.get("as_json")))

    return wrapper


def progress():
    """A Rich progress bar on standard error (so ``--json`` output stays clean)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
