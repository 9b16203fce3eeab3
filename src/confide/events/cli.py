"""``confide relay``: deliver the events parties left in their outboxes, and show what waits."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common import exit_codes
from confide.common.home import Home

relay_app = typer.Typer(
    help="Events between parties: deliver what waits in the outboxes, show what is pending.",
    no_args_is_help=True,
)


@relay_app.command("run")
@handle_errors
def run_cmd(
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", help="Give up after this many seconds (backoffs included).", min=0
        ),
    ] = 60.0,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver every pending event, retrying failures with backoff, until none is left
    (against a running deployment, each party's service delivers its own)."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        result = parties.relay_run(timeout)

    def human(r: dict[str, Any]) -> None:
        console.print(f"Delivered {r['delivered']:,} event(s); {r['pending']:,} still pending.")
        for error in r["errors"]:
            console.print(f"  failed once: {error}", highlight=False)

    report(result, as_json, human)
    if result["pending"]:
        raise typer.Exit(exit_codes.PARTLY_DONE)  # some events still wait for a retry


@relay_app.command("status")
@handle_errors
def status_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Events delivered and pending, per party; each pending one with its attempts so far
    (against a running deployment, as each party's service reports its own)."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        result = parties.relay_status()

    def human(r: dict[str, Any]) -> None:
        for party, state in r.items():
            console.print(
                f"{party}: {state['delivered']:,} delivered, {state['pending']:,} pending"
            )
            for item in state["waiting"]:
                console.print(
                    f"  {item['kind']}: {item['attempts']} attempt(s), next "
                    f"{item['next_attempt_at'][:19]} ({item['last_error'] or 'not tried yet'})",
                    highlight=False,
                )

    report(result, as_json, human)


def mount(app: typer.Typer) -> None:
    app.add_typer(relay_app, name="relay")
