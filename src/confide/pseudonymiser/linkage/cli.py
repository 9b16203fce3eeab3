"""Commands for linkage: quality for operators, the clerical review queue for the
pseudonymiser's reviewers (the only place identifiers are shown), and ``confide link``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home

linkage_app = typer.Typer(help="Probabilistic linkage: quality per source and the model.")
review_app = typer.Typer(
    help="The clerical review queue: possible matches for the pseudonymiser's reviewers."
)


def _percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


@linkage_app.command("quality")
@handle_errors
def quality_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Per source: records linked (on NHS number, by the model, later), pending, in review,
    the linkage rate and the estimated false-match rate."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        sources = parties.pseudonymiser.linkage_quality()

    def human(r: dict[str, Any]) -> None:
        table = Table("source", "records", "linked", "by model", "review", "pending",
                      "rate", "est. FMR", caption="FMR: estimated false-match rate")  # fmt: skip
        for s in r["sources"]:
            table.add_row(
                s["source"], f"{s['submitted']:,}", f"{s['linked']:,}",
                f"{s['probabilistic'] + s['linked_later']:,}", f"{s['in_review']:,}",
                f"{s['pending']:,}", _percent(s["linkage_rate"]),
                _percent(s["estimated_false_match_rate"], 3),
            )  # fmt: skip
        console.print(table)

    report({"sources": sources}, as_json, human)


@linkage_app.command("model")
@handle_errors
def model_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """The model's parameters (m, u and weight of every level), how it was trained, and the
    thresholds."""
    import math

    from confide.composition import compose
    from confide.pseudonymiser.linkage import model

    with compose(Home.at(home)) as parties:
        trained = parties.pseudonymiser.linkage_model()
    result: dict[str, Any] = {
        "trained": trained is not None,
        "link_probability": model.LINK_PROBABILITY,
        "review_probability": model.REVIEW_PROBABILITY,
    }
    if trained is not None:
        result["facts"] = trained["facts"]
        result["match_share"] = trained["match_share"]
        result["levels"] = [
            {**lv, "weight": round(math.log2(lv["m"] / lv["u"]), 2)} for lv in trained["levels"]
        ]

    def human(r: dict[str, Any]) -> None:
        if not r["trained"]:
            console.print("No linkage model yet: it is trained on the first suitable submission.")
            return
        console.print(f"Trained {r['facts']['trained_at']} on {r['facts']['records']:,} records "
                      f"and {r['facts']['people']:,} people.")  # fmt: skip
        table = Table("comparison", "level", "m", "u", "weight")
        for lv in r["levels"]:
            table.add_row(lv["comparison"], lv["level"], f"{lv['m']:.3g}", f"{lv['u']:.3g}",
                          f"{lv['weight']:+.1f}")  # fmt: skip
        console.print(table)
        console.print(f"Linked at probability {r['link_probability']}; reviewed from "
                      f"{r['review_probability']}.")  # fmt: skip

    report(result, as_json, human)


@review_app.command("list")
@handle_errors
def review_list_cmd(
    limit: Annotated[int, typer.Option("--limit", help="At most this many, oldest first.")] = 50,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Possible matches waiting for a decision, with both records' identifiers."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        items = parties.pseudonymiser.review_items(limit)

    def human(r: dict[str, Any]) -> None:
        if not r["items"]:
            console.print("The review queue is empty.")
        for item in r["items"]:
            _print_item(item)

    report({"items": items}, as_json, human)


def _print_item(item: dict[str, Any]) -> None:
    table = Table(f"item {item['id']} ({item['source']})", "record", "candidate",
                  title=f"probability {item['probability']:.1%}, weight "
                        f"{item['match_weight']:.1f}")  # fmt: skip
    for label, key in (("NHS number", "nhs_number"), ("date of birth", "birth_date"),
                       ("sex", "sex"), ("postcode", "postcode")):  # fmt: skip
        table.add_row(label, str(item[f"record_{key}"] or ""), str(item[f"candidate_{key}"] or ""))
    table.add_row("postcodes seen", "", ", ".join(item["candidate_postcodes"] or []))
    console.print(table)


@review_app.command("decide")
@handle_errors
def review_decide_cmd(
    item: Annotated[int, typer.Argument(help="The item's number (from `review list`).")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who decides (kept with it).")],
    match: Annotated[
        bool | None,
        typer.Option("--match/--not-a-match", help="Whether the record is the candidate."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decide a possible match: a match links the record and its rows reach the hub."""
    from confide.composition import compose

    if match is None:
        raise InvalidInput("Say --match or --not-a-match.")
    if not reviewer.strip():
        raise InvalidInput("--reviewer must name who decides.")
    with compose(Home.at(home)) as parties:
        decided = parties.pseudonymiser.decide_review(item, match, reviewer.strip()[:80])
        decided["readmitted"] = parties.hub.readmit()

    def human(r: dict[str, Any]) -> None:
        console.print(f"Item {r['id']}: {r['decision'].replace('_', ' ')}.")
        if r["readmitted"]["rows"]:
            console.print(f"{r['readmitted']['rows']:,} rows added to the record store.")

    report(decided, as_json, human)


@handle_errors
def link_cmd(
    left: Annotated[Path, typer.Argument(help="Records to link (CSV or Parquet).")],
    right: Annotated[Path, typer.Argument(help="The people to link them to (CSV or Parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the linked pairs (CSV).")],
    all_pairs: Annotated[
        bool, typer.Option("--all-pairs", help="Every scored pair, not only the best per record.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Link two files of person records with Confide's model (trained on them); write pairs.

    Input and output columns are described in docs/linkage.md."""
    from confide.pseudonymiser.linkage.evaluate import link_files

    result = link_files(left, right, out, all_pairs=all_pairs)

    def human(r: dict[str, Any]) -> None:
        console.print(f"Linked {r['linked']:,} of {r['left']:,} records "
                      f"({r['review']:,} possible, {r['pending']:,} unlinked); "
                      f"pairs written to {r['out']}.")  # fmt: skip

    report(result, as_json, human)


def mount(app: typer.Typer, pseudonymiser_app: typer.Typer) -> None:
    pseudonymiser_app.add_typer(linkage_app, name="linkage")
    pseudonymiser_app.add_typer(review_app, name="review")
    app.command("link")(link_cmd)
