"""Commands of the hub: enrol sources, ingest submissions, see what the store holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from confide.cli.accounts import print_accounts
from confide.cli.output import (
    HomeOption,
    JsonOption,
    console,
    err_console,
    handle_errors,
    progress,
    report,
)
from confide.common import exit_codes
from confide.common.errors import InvalidInput, SubmissionRejected
from confide.common.home import Home
from confide.composition import compose

REJECTED_HINT = (
    "Nothing of this submission was stored; the original is kept with the reason under the "
    "hub's rejected folder. Ask the source to send a fresh extract."
)

hub_app = typer.Typer(help="The hub: record store and trusted research environment.")


@hub_app.command("enrol")
@handle_errors
def enrol_cmd(
    ods: Annotated[str, typer.Option("--ods", help="The source's ODS code.")],
    kind: Annotated[str, typer.Option("--kind", help="practice or trust")],
    key: Annotated[str, typer.Option("--key", help="The source's Ed25519 public key (hex).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enrol a source's public key so its submissions can be authenticated."""
    if kind not in ("practice", "trust"):
        raise InvalidInput("--kind must be 'practice' or 'trust'.")
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        raise InvalidInput("--key must be the source's public key in hex (64 digits).") from None
    if len(raw) != 32:
        raise InvalidInput("--key must be 32 bytes (64 hex digits).")
    with compose(Home.at(home)) as parties:
        parties.hub.enrol(ods.upper(), kind, raw)
    report(
        {"enrolled": ods.upper(), "kind": kind},
        as_json,
        lambda shown: console.print(f"Enrolled {shown['enrolled']} ({shown['kind']})."),
    )


@hub_app.command("ingest")
@handle_errors
def ingest_cmd(
    submissions: Annotated[list[Path], typer.Argument(help="Submission folders to ingest.")],
    confirm_shrink: Annotated[
        bool,
        typer.Option(
            "--confirm-shrink",
            help="An operator's explicit yes to submissions that remove more of a source's "
            "record than --max-shrink allows (recorded).",
        ),
    ] = False,
    max_shrink: Annotated[
        float | None,
        typer.Option(
            "--max-shrink",
            help="Largest share (0-1) of a source's patients or rows one submission may "
            "remove unconfirmed (default 0.2, or CONFIDE_HUB_MAX_SHRINK).",
        ),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Authenticate, check and ingest submissions (idempotent; safe to repeat)."""
    results, failures = [], []
    with compose(Home.at(home)) as parties:
        hub = parties.hub
        with progress() as bar:
            task = bar.add_task("Ingesting", total=len(submissions))
            for folder in submissions:
                try:
                    done = hub.ingest(folder, confirm_shrink=confirm_shrink, max_shrink=max_shrink)
                    results.append(done.as_dict())
                except SubmissionRejected as exc:
                    failures.append({"submission": str(folder.resolve()), **exc.as_dict()})
                bar.advance(task)

    def human(r: dict) -> None:
        for item in r["ingested"]:
            console.print(
                f"[green]{item['status']}[/] {item['submission_id']}: "
                f"{item.get('patients', 0)} patients, {item.get('events', 0)} events, "
                f"{item.get('quarantined', 0)} quarantined"
            )
            print_accounts(item)
        for item in r["rejected"]:
            err_console.print(
                f"[red]Rejected[/] {escape(item['submission'])}: {escape(item['error'])}",
                highlight=False,
                soft_wrap=True,
            )
            hint = item.get("hint") or REJECTED_HINT
            err_console.print(
                f"  [yellow]What to do:[/] {escape(hint)}", highlight=False, soft_wrap=True
            )

    report({"ingested": results, "rejected": failures}, as_json, human)
    if failures:
        raise typer.Exit(exit_codes.PARTLY_DONE)


@hub_app.command("status")
@handle_errors
def status_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Rows held per table and the live snapshot of each source."""
    from confide.hub.records import TABLES

    counts = dict.fromkeys(TABLES, 0)
    sources: dict[str, dict] = {}
    with compose(Home.existing(home)) as parties:
        store = parties.records_to_read()  # a status only reads: nothing is created
        if store is not None:
            con = store.connect()
            counts = {
                table: (con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,))[0]
                for table in TABLES
            }
            sources = {
                ods: {"submission_id": e["submission_id"], "created_at": e["created_at"]}
                for ods, e in store.catalog()["sources"].items()
            }

    def human(r: dict) -> None:
        table = Table("table", "rows")
        for name, n in r["tables"].items():
            table.add_row(name, f"{n:,}")
        console.print(table)
        console.print(f"{len(r['sources'])} sources")
        e = r["erasures"]
        console.print(
            f"{e['erased_people']:,} people erased; {e['pending_erasures']:,} erasures pending"
            + (" (confide hub erasures)" if e["pending_erasures"] else "")
        )

    with compose(Home.at(home)) as parties:
        erasures = {k: v for k, v in parties.erasure_status().items() if k != "pending"}
    report({"tables": counts, "sources": sources, "erasures": erasures}, as_json, human)


@hub_app.command("readmit")
@handle_errors
def readmit_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Add the rows of records the pseudonymiser linked after their submission (every ingest
    does this too; run it after reviewers' decisions)."""
    with compose(Home.at(home)) as parties:
        done = parties.hub.readmit()
    report(
        done,
        as_json,
        lambda shown: console.print(
            f"{shown['records']:,} records linked since; {shown['rows']:,} rows added."
        ),
    )


@hub_app.command("erasures")
@handle_errors
def erasures_cmd(
    complete: Annotated[
        bool,
        typer.Option("--complete", help="Finish every pending erasure now (after a crash)."),
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erasures not yet confirmed by every store (and, with --complete, finish them)."""
    finished = 0
    with compose(Home.at(home)) as parties:
        if complete:
            finished = parties.complete_erasures()
        result = {**parties.erasure_status(), "completed": finished}

    def human(r: dict) -> None:
        console.print(
            f"{r['erased_people']:,} people erased; {r['pending_erasures']:,} erasures pending."
        )
        if r["pending"]:
            table = Table("erasure", "requested", "people", "waiting for")
            for item in r["pending"]:
                table.add_row(
                    item["erasure_id"],
                    item["requested_at"][:19],
                    f"{item['people']:,}",
                    ", ".join(item["waiting_for"]),
                )
            console.print(table)
            console.print("Run [bold]confide hub erasures --complete[/] to finish them.")

    report(result, as_json, human)


def mount(app: typer.Typer) -> None:
    app.add_typer(hub_app, name="hub")
