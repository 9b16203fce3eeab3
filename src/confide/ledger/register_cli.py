"""``confide ledger register``: the public release register, rendered from the log.

Wired by ``confide.ledger.cli.mount`` with ``add_commands(ledger_app)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from confide.cli.output import HomeOption, err_console, handle_errors
from confide.common.home import Home


@handle_errors
def register_cmd(
    fmt: Annotated[str, typer.Option("--format", help="html, csv or json.")] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
    organisation: Annotated[
        str | None, typer.Option("--organisation", help="Only organisations containing this.")
    ] = None,
    project: Annotated[str | None, typer.Option("--project", help="Only this project id.")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Only this purpose.")] = None,
    data_form: Annotated[
        str | None, typer.Option("--data-form", help="Only aggregate, dp or extract.")
    ] = None,
    opt_outs_applied: Annotated[
        bool | None,
        typer.Option(
            "--opt-outs-applied/--opt-outs-not-applied",
            help="Only releases that applied (or did not apply) opt-outs.",
            show_default=False,
        ),
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Released on or after (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Released on or before (YYYY-MM-DD).")
    ] = None,
    sort: Annotated[str, typer.Option("--sort", help="Column to sort by.")] = "index",
    descending: Annotated[bool, typer.Option("--descending", help="Newest/largest first.")] = False,
    home: HomeOption = None,
) -> None:
    """The public release register at the log's latest signed checkpoint."""
    from confide.composition import compose
    from confide.ledger import register as reg

    with compose(Home.at(home)) as parties:
        ledger = parties.ledger
        head = ledger.checkpoint()
        rows = reg.register_rows(ledger, head.size)
    where = reg.RegisterFilter(
        organisation=organisation,
        project_id=project,
        purpose=purpose,
        data_form=data_form,
        opt_outs_applied=opt_outs_applied,
        date_from=date_from,
        date_to=date_to,
    )
    text = reg.render(reg.select_rows(rows, where, sort, descending), fmt, head)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"Register written to {output}.")


def add_commands(ledger_app: typer.Typer) -> None:
    """Add ``register`` to the ledger's command group."""
    ledger_app.command("register")(register_cmd)
