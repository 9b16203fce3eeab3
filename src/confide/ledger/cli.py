"""Commands of the ledger party: verify (the auditor's check), checkpoint, show."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from confide.cli.output import HomeOption, JsonOption, console, err_console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home, resolve_home

if TYPE_CHECKING:
    from confide.ledger.log import Ledger

ledger_app = typer.Typer(
    help="The transparency log: verify it, sign checkpoints, read entries.",
    no_args_is_help=True,
)

VERIFIER_FOLDER = "ledger-verifier"


@contextmanager
def _open(home: Path | None) -> Iterator[Ledger]:
    """The ledger from the composition (witnessed, as every append must be)."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        yield parties.ledger


@ledger_app.command("verify")
@handle_errors
def verify_cmd(
    url: Annotated[
        str | None,
        typer.Option("--url", help="Base URL of a ledger API (…/api/ledger) to audit."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="File remembering the checkpoints seen (default: <home>/ledger-verifier/).",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Pin this verifier key (name+hash+base64) instead of trusting "
            "the key the log serves on first use.",
        ),
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            help="Pin this origin (the checkpoints' first line) instead of trusting "
            "the one the log claims on first use.",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="A witness's verifier key (name+key ID+base64); repeat for each witness "
            "whose cosignatures count.",
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(
            "--quorum",
            help="How many of the --witness keys must have cosigned the latest checkpoint "
            "(default: all of them).",
        ),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-hash the whole log and check it against every checkpoint seen; fail on tampering.

    The log's origin and key are pinned at the first check (or as given); a log that later
    shows another origin or key at the same place fails. With --witness, the latest
    checkpoint must carry a quorum of those witnesses' cosignatures.
    """
    from confide.ledger import verify as v
    from confide.ledger.cosignature import CosignatureVerifier

    root = resolve_home(home)
    state_path = state or root / VERIFIER_FOLDER / "state.json"
    witnesses = [CosignatureVerifier.parse(w) for w in witness or []]
    expect = v.Expectations(
        key=key,
        origin=origin,
        witnesses=witnesses,
        quorum=len(witnesses) if quorum is None else quorum,
    )
    if url:
        source = v.HttpSource.at(url)
        try:
            result = v.verify(source, state_path, expect=expect)
        finally:
            source.client.close()
    else:
        if not (root / "ledger").is_dir():
            raise InvalidInput(
                "There is no ledger in this home folder.",
                hint="Give --home of a Confide installation, or --url of its ledger API.",
            )
        with _open(home) as ledger:
            result = v.verify(v.LocalSource(ledger), state_path, local=ledger, expect=expect)
    report(result, as_json, _print_verify)
    if not result["ok"]:
        raise typer.Exit(v.TamperDetected.exit_code)


def _print_verify(r: dict) -> None:
    for note in r["notes"]:
        console.print(note)
    if r["ok"]:
        witnessed = r["cosigned_by"]
        console.print(
            f"[green]Log verified:[/] {r['size']} entries, root {r['root']}, consistent with "
            f"{len(r['checkpoints_checked'])} earlier checkpoint(s)"
            + (f", cosigned by {', '.join(witnessed)}." if witnessed else "."),
            highlight=False,
        )
        return
    err_console.print("[bold red]TAMPERING DETECTED[/] in the transparency log:")
    for problem in r["problems"]:
        err_console.print(f"  - {problem}", highlight=False)


@ledger_app.command("checkpoint")
@handle_errors
def checkpoint_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print the latest checkpoint with its cosignatures.

    Every append signs one; a log written before that was so is signed up to its size here.
    """
    with _open(home) as ledger:
        signed = ledger.sign_head()
        vkey = ledger.verifier_key()
    result = {**signed.as_dict(), "verifier_key": vkey, "checkpoint": signed.text}
    report(result, as_json, lambda shown: typer.echo(shown["checkpoint"], nl=False))


@ledger_app.command("show")
@handle_errors
def show_cmd(
    start: Annotated[int, typer.Option("--start", help="First index (from 0).")] = 0,
    end: Annotated[
        int | None, typer.Option("--end", help="One past the last index (default: start + 20).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print entries of the log, decoded."""
    with _open(home) as ledger:
        entries = ledger.decoded(start, start + 20 if end is None else end)
        size = ledger.head().size
    result = {"size": size, "entries": [e.as_dict() for e in entries]}

    def human(r: dict) -> None:
        console.print(f"{r['size']} entries in the log.")
        for e in r["entries"]:
            body = ", ".join(f"{k}={val}" for k, val in e["body"].items())
            console.print(f"#{e['index']} {e['at']} {e['kind']} v{e['v']}: {body}", highlight=False)

    report(result, as_json, human)


def mount(app: typer.Typer) -> None:
    """Attach this party's commands to the root app."""
    from confide.ledger import register_cli, witness_cli

    register_cli.add_commands(ledger_app)
    witness_cli.add_commands(ledger_app)
    app.add_typer(ledger_app, name="ledger")
