"""Command-line options that more than one command group takes, each defined once here."""

from __future__ import annotations

from typing import Annotated

import typer

TOKEN_ENVVAR = "CONFIDE_ACCESS_TOKEN"
_TOKEN_HELP = "Your bearer token (from `confide access token`)."

TokenOption = Annotated[
    str,
    typer.Option("--token", envvar=TOKEN_ENVVAR, help=_TOKEN_HELP, show_default=False),
]
"""``--token`` where a command always acts for a signed-in person."""

DemoTokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENVVAR,
        help=_TOKEN_HELP + " In a demo home, the demo project's own credentials are used when "
        "this is not given.",
        show_default=False,
    ),
]
"""``--token`` where a demo home may stand in its own project's credentials."""
