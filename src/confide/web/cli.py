"""``confide serve``: run the web app (patients' choices, public pages and the APIs)."""

from __future__ import annotations

from typing import Annotated

import typer

from confide.cli.output import HomeOption, console, handle_errors
from confide.common.errors import InvalidInput
from confide.common.home import Home

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@handle_errors
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)
    ] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Show the demo outbox page (one-time codes on screen). Never use in production.",
        ),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Serve the web app. Behind HTTPS in production; plain HTTP is for this machine only."""
    from confide.embedded import Installation

    if demo and host not in LOCAL_HOSTS:
        raise InvalidInput(
            "The demo shows one-time codes on a web page, so it may listen on this machine only.",
            hint="Use --host 127.0.0.1 with --demo.",
        )
    with Installation.open(Home.at(home)) as parties:
        serve_installation(parties, host=host, port=port, demo=demo)


def serve_installation(parties, *, host: str, port: int, demo: bool) -> None:
    """Serve the web app over already-wired parties (so web changes erase and log as the
    CLI's do), until interrupted."""
    import uvicorn

    from confide.web.app import create_app

    app = create_app(
        parties.home,
        registry=parties.choices,
        ledger=parties.ledger,
        access=parties.access,
        demo=demo,
        queries=parties.service,
        review=parties.review,
    )
    console.print(f"Confide is running at http://{host}:{port}/ (press Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


def register(app: typer.Typer) -> None:
    """Attach ``confide serve`` to the root app."""
    app.command("serve")(serve)
