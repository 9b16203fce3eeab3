"""The ``confide`` command line: each party contributes its own sub-commands.

Party commands are loaded only when used (:mod:`confide.cli.lazy`), and the whole command line
runs inside the one error handler (:mod:`confide.cli.failures`): usage errors and anything a
command did not anticipate get a message and an exit code, never a traceback.
"""

from __future__ import annotations

import sys

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


def run(argv: list[str] | None = None) -> None:
    """The entry point: run the command line, turning every failure into a message and code."""
    from confide.cli.quick import answer

    args = sys.argv[1:] if argv is None else list(argv)
    if answer(args):  # --help and version, without building the command tree
        return
    from confide.cli import failures

    try:
        result = typer.main.get_command(app).main(
            args=args, prog_name="confide", standalone_mode=False
        )
    except SystemExit:
        raise
    except BaseException as exc:  # the one handler decides for every class
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as usual
            typer.echo(exc.ctx.get_help())  # type: ignore[attr-defined]
            sys.exit(failures.exit_codes.BAD_REQUEST)
        failures.fail(exc, failures.wants_json(args))
    code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    sys.exit(code)
