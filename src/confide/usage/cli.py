"""Commands of the usage-report party: ``confide usage report`` (for operators and demos).

Patients get their report through the web app after the identity check; this command is the
same computation for an operator answering a subject access request, or for a demo.
"""

from __future__ import annotations

from typing import Annotated

import typer

from confide.cli.operator import LookupReason, OperatorEmail, OperatorOrg, logged_lookup
from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.home import Home

usage_app = typer.Typer(
    help="Patients' data usage reports: which releases used their data, with proofs.",
    no_args_is_help=True,
)

RELEASES_FOLDER = "releases"


@usage_app.command("report")
@handle_errors
def report_cmd(
    nhs_number: Annotated[
        str, typer.Option("--nhs-number", help="The person's 10-digit NHS number.")
    ],
    operator: OperatorEmail,
    organisation: OperatorOrg,
    reason: LookupReason,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every release that used the person's data, and those their choices kept them out of.
    Operators only; the look-up is recorded in the log (without the NHS number)."""
    from confide.composition import compose
    from confide.usage.report import usage_report

    logged_lookup(home, what="usage_report", email=operator, org=organisation, reason=reason)
    with compose(Home.at(home)) as parties:
        result = usage_report(
            nhs_number,
            pseudonymiser=parties.pseudonymiser,
            ledger=parties.ledger,
            releases_folder=parties.tre_store.releases,
            choices=parties.choices,
            salts=parties.salts,
        )
    report(result.as_dict(), as_json, _print_report)


def _print_report(r: dict) -> None:
    head = r["checkpoint"]
    console.print(
        f"Checked {r['releases_checked']} release(s) in the log at its signed checkpoint of "
        f"{head['size']} entries (root {head['root']})."
    )
    if not r["included"] and not r["excluded"]:
        console.print("No release in the log used this person's data.")
    for title, items in (
        ("Releases that used the data", r["included"]),
        ("Releases the person's choices kept them out of", r["excluded"]),
    ):
        if not items:
            continue
        console.print(f"[bold]{title}:[/]")
        for i in items:
            console.print(
                f"  {i['date']}  {i['organisation']}: {i['project_title'] or i['project_id']} "
                f"({i['purpose']}, {i['data_form']}); release {i['release_id']}, "
                f"proved by log entry {i['proof']['index']}",
                highlight=False,
            )
    if r["own_entries"]:
        console.print("[bold]The person's choice changes in the log:[/]")
        for e in r["own_entries"]:
            body = e["body"]
            what = ", ".join(
                [f"+{c}" for c in body.get("set", [])] + [f"-{c}" for c in body.get("cleared", [])]
            )
            console.print(
                f"  {e['logged_at']}  {e['kind']} {what} (log entry {e['proof']['index']})",
                highlight=False,
            )
    if r["unchecked"]:
        console.print(
            f"[yellow]{len(r['unchecked'])} release(s) could not be checked:[/] their membership "
            "files are missing or damaged (" + ", ".join(r["unchecked"]) + ")."
        )
    console.print("All proofs verified against the signed checkpoint.")


def mount(app: typer.Typer) -> None:
    """Attach this party's commands to the root app."""
    app.add_typer(usage_app, name="usage")
