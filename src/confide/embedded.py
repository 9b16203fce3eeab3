"""The embedded deployment: every party in one process, wired through public interfaces only.

This is the one place that composes parties (hub ⇄ pseudonymiser ⇄ choices ⇄ ledger); the
parties themselves never import each other's internals. A networked deployment replaces these
constructors with clients of the same interfaces.
"""

from __future__ import annotations

from confide.common.home import Home
from confide.hub.ingest import Hub
from confide.pseudonymiser import Pseudonymiser


def open_hub(home: Home) -> Hub:
    """The hub wired to the in-process pseudonymiser."""
    return Hub(home, Pseudonymiser.open(home))


def close_hub(hub: Hub) -> None:
    hub.close()
    close = getattr(hub.pseudonymiser, "close", None)
    if close is not None:
        close()
