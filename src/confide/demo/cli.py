"""``confide demo``: the whole flow on a synthetic area, with a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, progress, report
from confide.common.errors import InvalidInput
from confide.common.home import Home

STAGE_LABELS = {
    "synth": "synthetic area",
    "extract": "extract (summed over sources)",
    "pseudonymise": "pseudonymise (summed)",
    "ingest": "ingest (summed)",
    "extract_to_ingest_wall": "extract → ingest, wall clock",
    "seed": "seed demo projects and identity data",
    "total": "total",
}


@handle_errors
def demo(
    home: HomeOption = None,
    patients: Annotated[int, typer.Option("--patients", help="Synthetic patients.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the synthetic area.")] = 2026,
    from_dir: Annotated[
        Path | None,
        typer.Option("--from", help="Use exports in this folder instead of a synthetic area."),
    ] = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Do not start the web server afterwards.")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port for the web server.")] = 8000,
    as_json: JsonOption = False,
) -> None:
    """Generate an area, extract every practice and trust, pseudonymise, ingest, summarise."""
    from confide.demo.flow import run_demo

    if patients < 1:
        raise InvalidInput("--patients must be at least 1.")
    where = Home.at(home)
    with progress() as bar:
        task = bar.add_task("Sources", total=None)

        def step(ods: str, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=f"Ingested {ods}")

        summary = run_demo(where, patients=patients, seed=seed, from_dir=from_dir, on_progress=step)

    def human(r: dict) -> None:
        table = Table("", "", title="Confide demo", show_header=False)
        for label, key in [
            ("Sources (practices and trusts)", "sources"),
            ("Patients in the record store", "patients"),
            ("Clinical events", "events"),
            ("Medications", "medications"),
            ("Hospital episodes", "hospital_episodes"),
            ("Left out: type 1 objections", "type1_excluded"),
            ("Quarantined rows (with reasons)", "quarantined"),
        ]:
            table.add_row(label, f"{r[key]:,}")
        table.add_row("Witnesses cosigning the log", f"{len(r['checkpoint_cosigned_by'])}")
        rate = r["linkage_rate"]
        table.add_row("GP–hospital linkage rate", "n/a" if rate is None else f"{rate:.1%}")
        for q in r["linkage"]:
            if q["probabilistic"] or q["linked_later"] or q["in_review"] or q["pending"]:
                table.add_row(
                    f"Linkage at {q['source']} (model, review, pending)",
                    f"{q['linkage_rate']:.1%} linked ({q['probabilistic']:,} by model, "
                    f"{q['in_review']:,} in review, {q['pending']:,} pending); est. false "
                    f"matches {q['estimated_false_match_rate']:.3%}",
                )
        for stage, secs in r["seconds"].items():
            table.add_row(f"Time: {STAGE_LABELS.get(stage, stage)}", f"{secs:.1f} s")
        console.print(table)
        console.print(f"State is in {r['home']}.")

    report(summary, as_json, human)
    if not no_serve:
        from confide.embedded import Installation
        from confide.web.cli import serve_installation

        console.print(
            "Sign in as any patient of the area (see the area's exports under "
            f"{where.root / 'area'} for synthetic NHS numbers); one-time codes appear at "
            "/demo/outbox. Add --no-serve to skip the web server."
        )
        with Installation.open(where) as parties:
            serve_installation(parties, host="127.0.0.1", port=port, demo=True)


def mount(app: typer.Typer) -> None:
    app.command("demo")(demo)
