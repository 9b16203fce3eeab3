"""``confide witness``: run a witness that keeps transparency logs honest.

A witness is normally run by an organisation other than the log's operator, on its own
machine, with its own folder (``--folder``, default ``<home>/witness``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.home import Home

if TYPE_CHECKING:
    from confide.witness.service import Witness

witness_app = typer.Typer(
    help="A witness: checks that a log only ever grows, and cosigns its checkpoints.",
    no_args_is_help=True,
)

FolderOption = Annotated[
    Path | None,
    typer.Option(
        "--folder",
        help="The witness's own state folder (default: <home>/witness).",
        show_default=False,
    ),
]


def _open(folder: Path | None, home: Path | None, name: str | None = None) -> Witness:
    from confide.witness.service import Witness

    return Witness.open(folder or Home.at(home).party("witness"), name)


def _summary(witness: Witness) -> dict[str, Any]:
    logs = []
    for origin, keys in witness.store.origins().items():
        latest = witness.store.latest(origin)
        logs.append(
            {
                "origin": origin,
                "log_keys": keys,
                "cosigned_size": None if latest is None else latest.size,
                "cosigned_root": None if latest is None else latest.root.hex(),
                "evidence": len(witness.store.evidence(origin)),
            }
        )
    return {"name": witness.key.name, "verifier_key": witness.verifier.vkey, "logs": logs}


def _print_summary(r: dict) -> None:
    console.print(f"Witness {r['name']}", highlight=False)
    console.print(f"  verifier key: {r['verifier_key']}", highlight=False)
    for log in r["logs"]:
        size = "nothing yet" if log["cosigned_size"] is None else f"{log['cosigned_size']} entries"
        console.print(f"  watches {log['origin']}: cosigned {size}", highlight=False)
        if log["evidence"]:
            console.print(
                f"  [bold red]{log['evidence']} refused checkpoint(s) show this log misbehaving[/]"
                " (confide witness evidence)"
            )


@witness_app.command("init")
@handle_errors
def init_cmd(
    name: Annotated[
        str | None,
        typer.Option("--name", help="The witness's name, e.g. witness.example.org/w1 (once)."),
    ] = None,
    folder: FolderOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make the witness's key and name (once) and print its verifier key for logs and auditors."""
    with _open(folder, home, name) as witness:
        result = _summary(witness)
    report(result, as_json, _print_summary)


@witness_app.command("trust")
@handle_errors
def trust_cmd(
    origin: Annotated[str, typer.Option("--origin", help="The log's origin line.")],
    key: Annotated[str, typer.Option("--key", help="The log's verifier key (name+hash+base64).")],
    folder: FolderOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Watch a log: cosign checkpoints of this origin signed by this key."""
    with _open(folder, home) as witness:
        witness.trust(origin, key.strip())
        result = _summary(witness)
    report(result, as_json, _print_summary)


@witness_app.command("show")
@handle_errors
def show_cmd(
    folder: FolderOption = None, home: HomeOption = None, as_json: JsonOption = False
) -> None:
    """The witness's key, the logs it watches and the latest size it cosigned of each."""
    with _open(folder, home) as witness:
        result = _summary(witness)
    report(result, as_json, _print_summary)


@witness_app.command("evidence")
@handle_errors
def evidence_cmd(
    origin: Annotated[str | None, typer.Option("--origin", help="Only this log.")] = None,
    folder: FolderOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refused checkpoints, validly signed by a log, that contradict what it cosigned before."""
    with _open(folder, home) as witness:
        found = witness.store.evidence(origin)
    result = {
        "evidence": [
            {
                "origin": e.origin,
                "reason": e.reason,
                "received_at": e.received_at.isoformat(),
                "request": e.request,
            }
            for e in found
        ]
    }

    def human(r: dict) -> None:
        if not r["evidence"]:
            console.print("No misbehaviour seen.")
        for e in r["evidence"]:
            console.print(f"{e['received_at']} {e['origin']}: {e['reason']}", highlight=False)
            console.print(e["request"], highlight=False, markup=False)

    report(result, as_json, human)


@witness_app.command("serve")
@handle_errors
def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)
    ] = 8100,
    folder: FolderOption = None,
    home: HomeOption = None,
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) until interrupted."""
    import uvicorn

    from confide.witness.api import make_app

    with _open(folder, home) as witness:
        console.print(
            f"Witness {witness.key.name} is listening at http://{host}:{port}/ "
            "(press Ctrl+C to stop)",
            highlight=False,
        )
        uvicorn.run(make_app(witness), host=host, port=port, log_level="info", server_header=False)


def mount(app: typer.Typer) -> None:
    """Attach ``confide witness`` to the root app."""
    app.add_typer(witness_app, name="witness")
