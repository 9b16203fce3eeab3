"""Commands of the pseudonymiser: its public key and key rotation."""

from __future__ import annotations

import typer

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.home import Home

pseudonymiser_app = typer.Typer(
    help="The pseudonymiser: keys and pseudonyms (trusted third party)."
)


@pseudonymiser_app.command("public-key")
@handle_errors
def public_key_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print the public key practices seal identifiers to (hex)."""
    from confide.pseudonymiser import public_key

    key = public_key(Home.at(home)).hex()
    report({"public_key": key}, as_json, lambda shown: console.print(shown["public_key"]))


@pseudonymiser_app.command("rotate-key")
@handle_errors
def rotate_key_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Start a new pseudonymisation key version; people seen before keep their pseudonyms."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        version = parties.pseudonymiser.rotate_key()
    report(
        {"key_version": version},
        as_json,
        lambda shown: console.print(
            f"Pseudonymisation key version {shown['key_version']} is now current."
        ),
    )


def mount(app: typer.Typer) -> None:
    from confide.pseudonymiser.linkage import cli as linkage_cli

    linkage_cli.mount(app, pseudonymiser_app)
    app.add_typer(pseudonymiser_app, name="pseudonymiser")
