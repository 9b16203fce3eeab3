"""Commands of the ledger party."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this party's commands to the root app."""
