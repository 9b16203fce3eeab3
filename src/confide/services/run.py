"""One party as a service: its own party built here, the others reached over signed HTTP.

``confide service run PARTY`` serves the party's allowlisted methods (:mod:`confide.services.
rpc`); the hub's service includes the TRE's query service, and the web's is the web app over
a composition of clients. A party with an outbox relays it from here, in the background: a
change wakes the relay, which retries what fails with backoff.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from confide.common.home import Home
from confide.composition import RELAYING, Composition, compose
from confide.services import deployment
from confide.services.rpc import METHODS, rpc_app

RELAY_EVERY = 1.0  # seconds between background rounds (events left pending by a failure)


def party_methods(parties: Composition, party: str) -> dict[str, Callable[..., Any]]:
    """What ``party``'s service serves: the party's allowlisted methods, and the
    composition's own steps that belong on that party's side."""
    target = getattr(parties, party)
    methods = {name: getattr(target, name) for name in METHODS[party] if hasattr(target, name)}
    if party in RELAYING:
        methods["settle"] = parties.settle
        methods["relay_status"] = parties.own_relay_status
        methods["relay_run"] = parties.own_relay_run
    if party == "ledger":
        methods["cosign_latest"] = parties.cosign_latest
    if party == "hub":
        methods["erasure_status"] = parties.erasure_status
        methods["after_erasure"] = parties.after_erasure
        methods["complete_erasures"] = parties.complete_erasures
        for name, served in (("tre", parties.service), ("review", parties.review)):
            methods.update({f"{name}.{m}": getattr(served, m) for m in METHODS[name]})
    return methods


def _relay_in_background(parties: Composition, stop: threading.Event) -> threading.Thread:
    wake = parties.wake = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            wake.wait(RELAY_EVERY)
            wake.clear()
            try:
                parties.deliver()
            except Exception:  # a store briefly unavailable: the next round tries again
                continue

    thread = threading.Thread(target=loop, name=f"relay-{id(parties)}", daemon=True)
    thread.start()
    return thread


def build_app(parties: Composition, party: str) -> Any:
    """The ASGI app of ``party`` over ``parties`` (whose other parties are clients)."""
    home = parties.home
    if party == "web":
        from confide.web.app import create_app

        app = create_app(home, parties=parties, identity=parties.identity)

        async def health() -> dict[str, str]:
            return {"party": "web", "status": "ok"}

        app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
        return app
    check = deployment.verifier(home)
    return rpc_app(
        party,
        party_methods(parties, party),
        check,
        refresh=lambda: deployment.refresh(home, check),
    )


def serve(home: Home, party: str, *, host: str, port: int) -> None:
    """Serve ``party`` until interrupted."""
    import uvicorn

    os.environ[deployment.PARTY_ENV] = party  # every composition here keeps this party local
    deployment.publish(home, party)
    stop = threading.Event()
    with compose(home) as parties:
        app = build_app(parties, party)
        if party in RELAYING:
            _relay_in_background(parties, stop)
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
        finally:
            stop.set()
