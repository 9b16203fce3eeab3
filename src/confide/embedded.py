"""The embedded deployment: every party in one process, from the one composition.

Kept for the names earlier code uses; :mod:`confide.composition` builds and wires the parties.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from confide.common.home import Home
from confide.composition import Composition, witnessed

# Every party of one home, wired (the composition under the name the demo and tests use).
Installation = Composition


@contextlib.contextmanager
def embedded_tre(home: Home, *, engine: str = "duckdb") -> Iterator[Composition]:
    """Every party, wired, for one TRE command (``.service``, ``.review``, ``.access``);
    ``engine`` runs researchers' queries (duckdb, or spark for stores beyond one machine)."""
    with Composition.open(home, engine=engine) as parties:
        yield parties


def open_hub(home: Home) -> Any:
    """The hub of a composition of ``home`` (wired like every other); close with
    :func:`close_hub`."""
    parties = Composition.open(home)
    hub = parties.hub
    _OPEN[id(hub)] = parties
    return hub


def close_hub(hub: Any) -> None:
    parties = _OPEN.pop(id(hub), None)
    if parties is not None:
        parties.close()


_OPEN: dict[int, Composition] = {}

__all__ = ["Installation", "close_hub", "embedded_tre", "open_hub", "witnessed"]
