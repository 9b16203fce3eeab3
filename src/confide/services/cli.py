"""``confide up``, ``confide down``, ``confide services status`` and ``confide service run``:
the parties as services on this machine's loopback."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home

service_app = typer.Typer(help="Run one party as a service.", no_args_is_help=True)
services_app = typer.Typer(
    help="The parties running as services: where each is and whether it answers.",
    no_args_is_help=True,
)


@service_app.command("run")
@handle_errors
def run_cmd(
    party: Annotated[
        str,
        typer.Argument(help="ledger, choices, pseudonymiser, hub (with the TRE), access or web."),
    ],
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    home: HomeOption = None,
) -> None:
    """Serve one party: its methods to the parties enrolled with it, every request signed."""
    from confide.services import deployment
    from confide.services.run import serve

    if party not in deployment.SERVED:
        raise InvalidInput(
            f"There is no party {party!r} to serve.",
            hint="One of: " + ", ".join(deployment.SERVED) + ".",
        )
    serve(Home.at(home), party, host=host, port=port)


@handle_errors
def up(
    base_port: Annotated[
        int,
        typer.Option("--base-port", help="The first party's port; the others follow it.", min=1),
    ] = 8760,
    users: Annotated[
        bool,
        typer.Option(
            "--users",
            help="Run each party as its own system user (confide-<party>), made if missing, "
            "owning its own folder only (as root).",
        ),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL for every party's operational store (each in its own schema).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Start every party as a service on this machine (loopback), restarting any that stops.

    Ctrl+C or `confide down` stops them all."""
    from confide.services.supervisor import Child, up

    def started(kids: list[Child]) -> None:
        table = Table("party", "url", "pid")
        for child in kids:
            table.add_row(child.party, child.url, str(child.process.pid if child.process else ""))
        console.print(table)
        console.print("Every party is running (Ctrl+C or `confide down` stops them).")

    where = Home.at(home)
    env = {"CONFIDE_DATABASE_URL": database_url} if database_url else {}
    up(where, base_port, users=users, extra_env=env, started=started)


@handle_errors
def down(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Stop the parties `confide up` started."""
    from confide.services.supervisor import down

    stopped = down(Home.at(home))
    report(
        {"stopped": stopped},
        as_json,
        lambda r: console.print("Stopped." if r["stopped"] else "No deployment was running."),
    )


@services_app.command("status")
@handle_errors
def status_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Each party's URL, process id and whether it answers."""
    from confide.services.supervisor import status

    def human(r: dict[str, Any]) -> None:
        if not r["parties"]:
            console.print("No deployment is running for this home (start one: `confide up`).")
            return
        table = Table("party", "url", "pid", "health")
        for item in r["parties"]:
            table.add_row(
                item["party"],
                item["url"],
                str(item["pid"]),
                "ok" if item["healthy"] else "[red]not answering[/]",
            )
        console.print(table)

    report({"parties": status(Home.at(home))}, as_json, human)


def mount(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")
    app.add_typer(services_app, name="services")
    app.command("up")(up)
    app.command("down")(down)
