"""``confide ledger witnesses | add-witness | remove-witness | cosign``: the witnesses the log
asks to cosign its checkpoints.

Wired by ``confide.ledger.cli.mount`` with ``add_commands(ledger_app)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common import exit_codes
from confide.common.home import Home


def _listing(folder: Path) -> list[dict[str, str]]:
    from confide.ledger.witnessing import load_witnesses

    return [{"name": s.verifier.name, **s.as_dict()} for s in load_witnesses(folder)]


def _print_listing(r: dict) -> None:
    if not r["witnesses"]:
        console.print("The log asks no witnesses.")
    for w in r["witnesses"]:
        console.print(f"{w['name']}  {w.get('url') or 'folder ' + w['folder']}", highlight=False)
        console.print(f"  {w['key']}", highlight=False)


@handle_errors
def witnesses_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the witnesses the log asks to cosign each checkpoint."""
    folder = Home.at(home).party("ledger")
    report({"witnesses": _listing(folder)}, as_json, _print_listing)


@handle_errors
def add_witness_cmd(
    key: Annotated[
        str, typer.Option("--key", help="The witness's verifier key (name+key ID+base64).")
    ],
    url: Annotated[
        str | None, typer.Option("--url", help="Where the witness is served (its URL prefix).")
    ] = None,
    folder: Annotated[
        str | None,
        typer.Option("--folder", help="Or: its folder inside the home, run in-process."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask this witness to cosign every checkpoint from now on.

    The witness must already watch this log: see 'confide witness trust'.
    """
    from confide.ledger.witnessing import WitnessSpec, add_witness

    ledger_folder = Home.at(home).party("ledger")
    add_witness(ledger_folder, WitnessSpec(key.strip(), url, folder))
    report({"witnesses": _listing(ledger_folder)}, as_json, _print_listing)


@handle_errors
def remove_witness_cmd(
    name: Annotated[str, typer.Argument(help="The witness's name (its key name).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop asking a witness (the cosignatures it made are kept)."""
    from confide.ledger.witnessing import remove_witness

    ledger_folder = Home.at(home).party("ledger")
    remove_witness(ledger_folder, name)
    report({"witnesses": _listing(ledger_folder)}, as_json, _print_listing)


@handle_errors
def cosign_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Ask every witness to cosign the latest checkpoint now (after an outage, say)."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        result = parties.cosign_latest()
    outcomes: dict[str, str] = result["witnesses"]

    def human(r: dict) -> None:
        if not r["witnesses"]:
            console.print("The log asks no witnesses.")
        for name, outcome in r["witnesses"].items():
            console.print(f"{name}: {outcome}", highlight=False)

    report(result, as_json, human)
    if any(outcome.startswith("ALARM") for outcome in outcomes.values()):
        raise typer.Exit(exit_codes.LOG_TAMPERED)  # a witness saw another version of the log
    if any(outcome != "cosigned" for outcome in outcomes.values()):
        raise typer.Exit(exit_codes.PARTLY_DONE)


def add_commands(ledger_app: typer.Typer) -> None:
    """Add the witness commands to the ledger's command group."""
    ledger_app.command("witnesses")(witnesses_cmd)
    ledger_app.command("add-witness")(add_witness_cmd)
    ledger_app.command("remove-witness")(remove_witness_cmd)
    ledger_app.command("cosign")(cosign_cmd)
