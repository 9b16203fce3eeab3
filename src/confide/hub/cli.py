"""Commands of the hub: enrol sources, ingest submissions, see what the store holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, progress, report
from confide.common.errors import InvalidInput, SubmissionRejected
from confide.common.home import Home
from confide.embedded import close_hub, open_hub

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
    hub = open_hub(Home.at(home))
    try:
        hub.enrol(ods.upper(), kind, raw)
    finally:
        close_hub(hub)
    report(
        {"enrolled": ods.upper(), "kind": kind},
        as_json,
        lambda r: console.print(f"Enrolled {r['enrolled']} ({r['kind']})."),
    )


@hub_app.command("ingest")
@handle_errors
def ingest_cmd(
    submissions: Annotated[list[Path], typer.Argument(help="Submission folders to ingest.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Authenticate, check and ingest submissions (idempotent; safe to repeat)."""
    hub = open_hub(Home.at(home))
    results, failures = [], []
    try:
        with progress() as bar:
            task = bar.add_task("Ingesting", total=len(submissions))
            for folder in submissions:
                try:
                    results.append(hub.ingest(folder).as_dict())
                except SubmissionRejected as exc:
                    failures.append({"submission": folder.name, **exc.as_dict()})
                bar.advance(task)
    finally:
        close_hub(hub)

    def human(r: dict) -> None:
        for item in r["ingested"]:
            console.print(
                f"[green]{item['status']}[/] {item['submission_id']}: "
                f"{item.get('patients', 0)} patients, {item.get('events', 0)} events, "
                f"{item.get('quarantined', 0)} quarantined"
            )
        for item in r["rejected"]:
            console.print(f"[red]rejected[/] {item['submission']}: {item['error']}")
            if item.get("hint"):
                console.print(f"  What to do: {item['hint']}")

    report({"ingested": results, "rejected": failures}, as_json, human)
    if failures:
        raise typer.Exit(1)


@hub_app.command("status")
@handle_errors
def status_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Rows held per table and the live snapshot of each source."""
    from confide.hub.records import TABLES, RecordStore

    store = RecordStore(Home.at(home).party("hub") / "records")
    con = store.connect()
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
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

    from confide.hub.erasure import ErasureRegister
    from confide.hub.opstore import HubOpStore

    ops = HubOpStore(Home.at(home))
    try:
        erasures = ErasureRegister(ops.engine).counts()
    finally:
        ops.close()
    report({"tables": counts, "sources": sources, "erasures": erasures}, as_json, human)


@hub_app.command("readmit")
@handle_errors
def readmit_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Add the rows of records the pseudonymiser linked after their submission (every ingest
    does this too; run it after reviewers' decisions)."""
    from confide.embedded import Installation

    with Installation.open(Home.at(home)) as parties:
        done = parties.hub.readmit()
    report(
        done,
        as_json,
        lambda r: console.print(
            f"{r['records']:,} records linked since; {r['rows']:,} rows added."
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
    from confide.embedded import Installation
    from confide.hub.erasure import ErasureRegister
    from confide.hub.opstore import HubOpStore

    finished = 0
    if complete:
        with Installation.open(Home.at(home)) as parties:  # opening finishes what it can
            finished = parties.complete_erasures()
    ops = HubOpStore(Home.at(home))
    try:
        register_ = ErasureRegister(ops.engine)
        result = {**register_.counts(), "pending": register_.pending(), "completed": finished}
    finally:
        ops.close()

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


def register(app: typer.Typer) -> None:
    app.add_typer(hub_app, name="hub")
