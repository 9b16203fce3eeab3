"""The ``confide`` command line: each party contributes its own sub-commands.

Party commands are loaded only when used (:mod:`confide.cli.lazy`), ``--help`` and
``version`` are answered before Typer is even imported (:mod:`confide.cli.quick`), and the
whole command line runs inside the one error handler (:mod:`confide.cli.failures`): usage
errors and anything a command did not anticipate get a message and an exit code, never a
traceback.
"""

from __future__ import annotations

import sys
from typing import Any


def __getattr__(name: str) -> Any:
    """``confide.cli.main.app``, the command tree, built on first use (it imports Typer)."""
    if name == "app":
        from confide.cli.app import app

        return app
    raise AttributeError(name)


def run(argv: list[str] | None = None) -> None:
    """The entry point: run the command line, turning every failure into a message and code."""
    from confide.cli.quick import answer

    args = sys.argv[1:] if argv is None else list(argv)
    if answer(args):  # --help and version, without building the command tree
        return
    import typer

    from confide.cli import failures
    from confide.cli.app import app

    try:
        result = typer.main.get_command(app).main(
            args=args, prog_name="confide", standalone_mode=False
        )
    except SystemExit:
        raise
    except BaseException as exc:  # the one handler decides for every class
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as usual
            typer.echo(exc.ctx.get_help())  # type: ignore[attr-defined]  # click's, matched by name
            sys.exit(failures.exit_codes.BAD_REQUEST)
        failures.fail(exc, failures.wants_json(args))
    code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    sys.exit(code)
