"""The ``confide`` command line: each party contributes its own sub-commands."""

from __future__ import annotations

import typer

from confide import __version__

app = typer.Typer(
    name="confide",
    help="Confide: GP and hospital records for NHS planning and research, "
    "with every patient's choice honoured.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Confide: GP and hospital records for NHS planning and research."""


def _register() -> None:
    """Attach every party's commands (imported here so ``--help`` lists them all)."""
    from confide.access import cli as access_cli
    from confide.choices import cli as choices_cli
    from confide.demo import cli as demo_cli
    from confide.hub import cli as hub_cli
    from confide.ledger import cli as ledger_cli
    from confide.practice import cli as practice_cli
    from confide.pseudonymiser import cli as pseudonymiser_cli
    from confide.rollout import cli as rollout_cli
    from confide.synth import cli as synth_cli
    from confide.tre import cli as tre_cli
    from confide.usage import cli as usage_cli
    from confide.web import cli as web_cli
    from confide.witness import cli as witness_cli

    synth_cli.register(app)
    practice_cli.register(app)
    pseudonymiser_cli.register(app)
    hub_cli.register(app)
    choices_cli.register(app)
    access_cli.register(app)
    tre_cli.register(app)
    ledger_cli.register(app)
    witness_cli.register(app)
    rollout_cli.register(app)
    usage_cli.register(app)
    web_cli.register(app)
    demo_cli.register(app)


@app.command("version")
def version() -> None:
    """Print Confide's version."""
    typer.echo(__version__)


_register()


def run() -> None:
    app()
