"""Commands of the practice agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confide.cli.accounts import print_accounts
from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home

practice_app = typer.Typer(help="The practice agent: turn a source's export into a submission.")


@practice_app.command("extract")
@handle_errors
def extract_cmd(
    export: Annotated[Path, typer.Argument(help="The source's export folder (FHIR or CSV).")],
    source: Annotated[
        str | None, typer.Option("--source", help="ODS code (default: from source.json).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the submission folder.")
    ] = None,
    pseudonymiser_key: Annotated[
        str | None,
        typer.Option("--pseudonymiser-key", help="The pseudonymiser's public key (hex)."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate, drop type 1 objectors, minimise, seal identifiers and sign a submission."""
    from confide.practice.agent import extract

    where = Home.at(home)
    if pseudonymiser_key:
        try:
            key = bytes.fromhex(pseudonymiser_key)
        except ValueError:
            raise InvalidInput("--pseudonymiser-key must be hex.") from None
    else:
        from confide.pseudonymiser import public_key

        key = public_key(where)
    with console.status("Extracting…"):
        result = extract(export, where, key, source=source, out=out)

    def human(r: dict) -> None:
        console.print(f"[green]Submission[/] {r['submission_id']} written to {r['path']}")
        console.print(
            f"  {r['patients']:,} patients, {r['events']:,} events, "
            f"{r['medications']:,} medications, {r['episodes']:,} hospital episodes"
        )
        console.print(f"  {r['type1_excluded']:,} patients with a type 1 objection were left out")
        if r.get("held_back"):  # the roll-out's waiting period (confide.rollout.at_practice)
            console.print(
                f"  {r['held_back']:,} patients held back until told and their waiting period ends"
                f" (no notice {r['held_no_notice']:,}, waiting {r['held_waiting']:,}, notice came"
                f" back {r['held_undeliverable']:,})"
            )
        print_accounts(r)
        if r["rejected"]:
            console.print(
                f"  [yellow]{r['rejected']:,} {'piece' if r['rejected'] == 1 else 'pieces'} of "
                "the export could not be used[/]; "
                f"reasons and originals kept in {r['rejected_file']}"
            )

    report(result.as_dict(), as_json, human)


@practice_app.command("public-key")
@handle_errors
def public_key_cmd(
    source: Annotated[str, typer.Option("--source", help="ODS code.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the source's signing public key (hex), for enrolment with the hub."""
    from confide.practice.keys import check_ods, verify_key

    ods = check_ods(source)
    key = verify_key(Home.at(home), ods).hex()
    report(
        {"source": ods, "public_key": key},
        as_json,
        lambda shown: console.print(shown["public_key"]),
    )


def mount(app: typer.Typer) -> None:
    app.add_typer(practice_app, name="practice")
