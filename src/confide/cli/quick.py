"""``confide --help`` and ``confide version`` without building the command tree.

Building any Typer command builds a Pydantic validator per parameter (Typer ≥ 0.2x), which
alone costs more than the 0.3 s a person should wait for a version or the list of commands.
These two answers need no parsing, so the entry point gives them from here: the version, and
the root help drawn from the same table the lazy group lists (:mod:`confide.cli.lazy`). A test
checks that this help names the same commands, with the same one-line help, as Typer's.
"""

from __future__ import annotations

import sys

ROOT_HELP = (
    "Confide: GP and hospital records for NHS planning and research, "
    "with every patient's choice honoured."
)
EAGER_COMMANDS = {"version": "Print Confide's version."}


def answer(args: list[str]) -> bool:
    """Print the answer to ``args`` if it is one of the quick ones; say whether it was."""
    if args == ["version"]:
        from confide import __version__

        sys.stdout.write(f"{__version__}\n")
        return True
    if args == ["--help"]:
        print_root_help()
        return True
    return False


def commands() -> dict[str, str]:
    """Every top-level command and its one-line help, in the order ``--help`` lists them."""
    from confide.cli.lazy import PARTY_COMMANDS

    return {**EAGER_COMMANDS, **{name: p.help for name, p in PARTY_COMMANDS.items()}}


def print_root_help() -> None:
    from rich.console import Console
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table

    console = Console(highlight=False)
    console.print()
    console.print(" [bold]Usage:[/] confide [OPTIONS] COMMAND [ARGS]...")
    console.print()
    console.print(Padding(ROOT_HELP, (0, 1)))
    console.print()
    options = Table.grid(padding=(0, 2))
    options.add_row("[bold cyan]--help[/]", "Show this message and exit.")
    console.print(Panel(options, title="Options", title_align="left", border_style="dim"))
    table = Table.grid(padding=(0, 2))
    for name, text in commands().items():
        table.add_row(f"[bold cyan]{name}[/]", text)
    console.print(Panel(table, title="Commands", title_align="left", border_style="dim"))
    console.print(" Run [bold]confide COMMAND --help[/] for a command's options.")
