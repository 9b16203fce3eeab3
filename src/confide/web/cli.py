"""``confide serve``: run the web app (patients' choices, public pages and the APIs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from confide.cli.output import HomeOption, console, handle_errors
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.web.hardening import parse_proxies

if TYPE_CHECKING:
    from fastapi import FastAPI

    from confide.embedded import Installation
    from confide.usage.report import UsageReport

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Seconds between the background relay's rounds while serving (events a failure left pending).
RELAY_EVERY = 2.0


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
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or network of a reverse proxy whose X-Forwarded-For is believed "
            "(repeat for several). From anywhere else the header is ignored.",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Serve the web app. Behind HTTPS in production; plain HTTP is for this machine only."""
    from confide.embedded import Installation

    if demo and host not in LOCAL_HOSTS:
        raise InvalidInput(
            "The demo shows one-time codes on a web page, so it may listen on this machine only.",
            hint="Use --host 127.0.0.1 with --demo.",
        )
    proxies = list(trusted_proxy or [])
    try:
        parse_proxies(proxies)
    except ValueError:
        raise InvalidInput(
            "A --trusted-proxy is not an address or network.", hint="For example 10.0.0.5."
        ) from None
    with Installation.open(Home.at(home)) as parties:
        serve_installation(parties, host=host, port=port, demo=demo, trusted_proxies=proxies)


def installation_usage(parties: Installation) -> Callable[[str], UsageReport]:
    """The usage report as the web app asks for it: a verified NHS number in, a report out.

    It runs with the choices registry, the pseudonymiser and the commitment secrets (the only
    parties that may hold an NHS number); the web page only ever gets the finished report.
    """
    from confide.usage.report import usage_report

    def report(nhs_number: str) -> UsageReport:
        return usage_report(
            nhs_number,
            pseudonymiser=parties.pseudonymiser,
            ledger=parties.ledger,
            releases_folder=parties.tre_store.releases,
            choices=parties.choices,
            salts=parties.salts,
        )

    return report


def installation_app(parties: Installation, *, demo: bool, **options: Any) -> FastAPI:
    """The web app over already-wired parties, so web changes erase and log as the CLI's do,
    queries reach the TRE, and patients can see their usage report."""
    from confide.common import settings
    from confide.web.app import create_app

    options.setdefault("gp_token", settings.value(settings.GP_TOKEN.name))
    options.setdefault("usage", installation_usage(parties))
    options.setdefault("queries", parties.service)
    options.setdefault("review", parties.review)
    options.setdefault("linkage_quality", parties.pseudonymiser.linkage_quality)
    return create_app(
        parties.home,
        registry=parties.choices,
        ledger=parties.ledger,
        access=parties.access,
        demo=demo,
        parties=parties,
        **options,
    )


def serve_installation(
    parties: Installation,
    *,
    host: str,
    port: int,
    demo: bool,
    trusted_proxies: list[str] | None = None,
) -> None:
    """Serve the web app over already-wired parties until interrupted."""
    import uvicorn

    app = installation_app(
        parties, demo=demo, trusted_proxies=trusted_proxies or [], relay_every=RELAY_EVERY
    )
    console.print(f"Confide is running at http://{host}:{port}/ (press Ctrl+C to stop)")
    # Forwarding headers are judged by the app's own TrustedProxies, never by the server.
    uvicorn.run(
        app, host=host, port=port, log_level="info", server_header=False, proxy_headers=False
    )


def mount(app: typer.Typer) -> None:
    """Attach ``confide serve`` to the root app."""
    app.command("serve")(serve)
