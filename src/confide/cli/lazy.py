"""Party commands loaded only when used, so ``confide --help`` and ``confide version`` start fast.

Each party module adds its commands with ``register(app)``; importing one pulls in DuckDB,
SQLAlchemy, Splink and the rest, over a second in all. The root group knows each command's
name, its module and its one-line help from :data:`PARTY_COMMANDS` and imports the module only
when the command runs (or a tool walks the whole tree). A test checks the table against the
commands themselves, so the listing cannot drift.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup


@dataclass(frozen=True)
class PartyCommand:
    """A top-level command a party module registers, with its one-line help."""

    module: str
    help: str


PARTY_COMMANDS: dict[str, PartyCommand] = {
    "synth": PartyCommand(
        "confide.synth.cli",
        "Generate a synthetic English area: practices and trusts with realistic exports.",
    ),
    "practice": PartyCommand(
        "confide.practice.cli", "The practice agent: turn a source's export into a submission."
    ),
    "pseudonymiser": PartyCommand(
        "confide.pseudonymiser.cli", "The pseudonymiser: keys and pseudonyms (trusted third party)."
    ),
    "link": PartyCommand(
        "confide.pseudonymiser.cli",
        "Link two files of person records with Confide's model (trained on them); write pairs.",
    ),
    "hub": PartyCommand(
        "confide.hub.cli", "The hub: record store and trusted research environment."
    ),
    "choices": PartyCommand(
        "confide.choices.cli",
        "The patients' choices registry: record opt-outs, show them, clean lists.",
    ),
    "access": PartyCommand(
        "confide.access.cli", "Organisations, people, roles and projects (who may do what)."
    ),
    "query": PartyCommand(
        "confide.tre.cli", "Run queries over your project's views (only checked outputs leave)."
    ),
    "review": PartyCommand(
        "confide.tre.cli", "Output checkers: review outputs held for two independent votes."
    ),
    "ledger": PartyCommand(
        "confide.ledger.cli", "The transparency log: verify it, sign checkpoints, read entries."
    ),
    "witness": PartyCommand(
        "confide.witness.cli",
        "A witness: checks that a log only ever grows, and cosigns its checkpoints.",
    ),
    "rollout": PartyCommand(
        "confide.rollout.cli", "The roll-out: waves, practices, notices and the national pause."
    ),
    "usage": PartyCommand(
        "confide.usage.cli",
        "Patients' data usage reports: which releases used their data, with proofs.",
    ),
    "serve": PartyCommand("confide.web.cli", "Serve the web app."),
    "demo": PartyCommand(
        "confide.demo.cli",
        "Generate an area, extract every practice and trust, pseudonymise, ingest, summarise.",
    ),
}


def load(module_name: str) -> TyperGroup:
    """The commands one party module registers (imports the module)."""
    module = importlib.import_module(module_name)
    holder = typer.Typer()
    module.register(holder)
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
