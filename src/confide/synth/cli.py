"""``confide synth``: write a synthetic area's GP and hospital exports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, progress, report


def mount(app: typer.Typer) -> None:
    """Attach this party's commands to the root app."""
    app.command("synth")(synth_cmd)


@handle_errors
def synth_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the area's exports to.")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 2026,
    patients: Annotated[
        int, typer.Option("--patients", help="Patients registered in the area.")
    ] = 20_000,
    fmt: Annotated[
        str,
        typer.Option("--format", help="Export format: fhir (NDJSON), fhir-bundle, fhir-xml, csv."),
    ] = "fhir",
    practices: Annotated[
        int | None,
        typer.Option("--practices", help="GP practices (default: one per 1,500 patients)."),
    ] = None,
    trusts: Annotated[int, typer.Option("--trusts", help="Hospital trusts.")] = 2,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic English area: practices and trusts with realistic exports."""
    del home  # the exports are the only output; nothing is kept in the home folder
    from confide.synth.generate import generate

    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_progress(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        summary = generate(
            out,
            patients=patients,
            seed=seed,
            fmt=fmt,
            practices=practices,
            trusts=trusts,
            progress=on_progress,
        )
    summary["out"] = str(out)

    def human(r: dict) -> None:
        console.print(
            f"[green]Synthetic area[/] written to {r['out']} ({r['format']}, seed {r['seed']})"
        )
        console.print(
            f"  {r['practices']:,} practices and {r['trusts']:,} trusts; "
            f"{r['patients']:,} patients ({r['deceased']:,} died in the last years)"
        )
        console.print(
            f"  {r['events']:,} events, {r['medications']:,} medications, "
            f"{r['episodes']:,} hospital episodes for {r['hospital_patients']:,} hospital patients"
        )
        console.print(
            f"  {r['type1_dissent']:,} type 1 objections recorded, "
            f"{r['type1_withdrawn']:,} later withdrawn"
        )

    report(summary, as_json, human)
