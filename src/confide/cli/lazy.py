"""Party commands loaded only when used, so ``confide --help`` and ``confide version`` start fast.

Each party module adds its commands with ``mount(app)``; importing one pulls in DuckDB,
SQLAlchemy, Splink and the rest, over a second in all. The root group knows each command's
name, its module and its one-line help from :data:`PARTY_COMMANDS` and imports the module only
when the command runs (or a tool walks the whole tree). A test checks the table against the
commands themselves, so the listing cannot drift.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from confide.cli.party_commands import PARTY_COMMANDS, PartyCommand

__all__ = ["PARTY_COMMANDS", "LazyGroup", "PartyCommand", "load"]


def load(module_name: str) -> TyperGroup:
    """The commands one party module mounts (imports the module)."""
    module = importlib.import_module(module_name)
    holder = typer.Typer()
    module.mount(holder)
    return typer.main.get_group(holder)


def _listing_entry(ctx: Any, name: str, text: str) -> Any:
    """A stand-in that only shows the command's one-line help in ``confide --help``."""
    holder = typer.Typer()
    holder.command(name, help=text)(lambda: None)
    return typer.main.get_group(holder).get_command(ctx, name)


class LazyGroup(TyperGroup):
    """The root group: lists party commands from the table, imports a party when it runs."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *PARTY_COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        party = PARTY_COMMANDS.get(cmd_name)
        if party is None:
            return None
        if self._listing:
            return _listing_entry(ctx, cmd_name, party.help)
        command = load(party.module).get_command(ctx, cmd_name)
        if command is not None:
            self.add_command(command, cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
