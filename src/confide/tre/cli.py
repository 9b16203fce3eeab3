"""Commands of the TRE: run and inspect queries, see a project's privacy budget, review outputs.

Every command acts for a person identified by a bearer token (``--token`` or
``$CONFIDE_ACCESS_TOKEN``), exactly as the HTTP API does, so the same rules apply to both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from confide.cli.options import DemoTokenOption, TokenOption
from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.tre.model import parse_bounds

query_app = typer.Typer(help="Run queries over your project's views (only checked outputs leave).")
review_app = typer.Typer(help="Output checkers: review outputs held for two independent votes.")


def _demo_token(tre, project: str) -> str:
    """A token from the demo's saved credentials for ``project`` (demo homes only)."""
    from confide.demo.credentials import load

    found = load(tre.home).get(project)
    if not found:
        raise InvalidInput(
            "No --token given, and this home has no demo credentials for that project.",
            hint="Get a token with `confide access token` and pass --token.",
        )
    return tre.access.issue_token(found["client_id"], found["client_secret"]).access_token


def _show_outcome(r: dict[str, Any]) -> None:
    console.print(f"[bold]{r['status']}[/] (query {r['id']}, {r['mode']})")
    if r.get("reason"):
        console.print(f"  {r['reason']}")
    result = r.get("result")
    if result:
        table = Table(*result["columns"])
        intervals = result.get("intervals")
        for i, row in enumerate(result["rows"]):
            cells = []
            for column in result["columns"]:
                value = row[column]
                text = "[suppressed]" if value is None else f"{value:.4g}" if isinstance(
                    value, float
                ) else str(value)  # fmt: skip
                if intervals and column in intervals[i]:
                    low, high = intervals[i][column]
                    text += f" (95% CI {low:.4g} to {high:.4g})"
                cells.append(text)
            table.add_row(*cells)
        console.print(table)
        for label in r.get("labels") or []:
            where = f"row {label['row']}, " if "row" in label else ""
            console.print(f"  {where}{label['column']}: {label['action']} — {label['reason']}")
        for note in result.get("notes") or []:
            console.print(f"  {note}")
    if r.get("budget_left") is not None:
        console.print(f"  privacy budget left: epsilon {r['budget_left']:.4g}")


@query_app.command("run")
@handle_errors
def run(
    sql: Annotated[
        str | None,
        typer.Argument(help="Aggregate SQL: SELECT dimensions, measures ... GROUP BY ..."),
    ] = None,
    project: Annotated[str, typer.Option("--project", help="The project's short name.")] = "",
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition",
            help="A JSON file with population, dimensions and measures (instead of SQL).",
            show_default=False,
        ),
    ] = None,
    token: DemoTokenOption = None,
    bound: Annotated[
        list[str] | None,
        typer.Option("--bound", help="name=LOW:HIGH: the bounds of a sum, avg or quantile."),
    ] = None,
    totals: Annotated[
        bool, typer.Option("--totals", help="Add totals over each dimension.")
    ] = False,
    epsilon: Annotated[
        float | None,
        typer.Option("--epsilon", help="DP projects: the privacy budget this query spends."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option("--engine", help="duckdb (default) or spark (needs the spark extra, Java)."),
    ] = "duckdb",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run one query; prints its status (released / held_for_review / refused) and result.

    The output's protection is the project's, set by its approver when approving."""
    from confide.embedded import embedded_tre

    query = _read_query(sql, definition)
    if not project:
        raise InvalidInput(
            "Name the project with --project.", hint="See `confide access project list`."
        )
    with embedded_tre(Home.at(home), engine=engine) as tre:
        principal = tre.access.authenticate(token or _demo_token(tre, project))
        outcome = tre.service.run(
            principal,
            project,
            query,
            bounds=parse_bounds(bound or []),
            totals=totals,
            epsilon=epsilon,
        )
    report(outcome.as_dict(), as_json, _show_outcome)


def _read_query(sql: str | None, definition: Path | None) -> str | dict[str, Any]:
    if (sql is None) == (definition is None):
        raise InvalidInput(
            "Give the query as SQL, or --definition FILE (one of them).",
            hint='For example: confide query run --project P "SELECT sex, count(DISTINCT '
            'patient_id) AS n FROM patients GROUP BY sex"',
        )
    if sql is not None:
        return sql
    assert definition is not None
    try:
        data = json.loads(definition.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"There is no file {definition}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(
            f"The definition {definition} could not be read as JSON ({type(error).__name__}).",
            hint="Write an object with population, dimensions and measures.",
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("The definition must be a JSON object.")
    return data


@query_app.command("show")
@handle_errors
def show(
    query_id: Annotated[str, typer.Argument(help="The query id printed by `query run`.")],
    token: TokenOption,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one of your organisation's queries (its result once released)."""
    from confide.embedded import embedded_tre

    with embedded_tre(Home.at(home)) as tre:
        outcome = tre.service.show(tre.access.authenticate(token), query_id)
    report(outcome.as_dict(), as_json, _show_outcome)


@query_app.command("budget")
@handle_errors
def budget(
    project: Annotated[str, typer.Option("--project", help="The project's short name.")],
    token: TokenOption,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a project's output protection and, for DP projects, its privacy budget."""
    from confide.embedded import embedded_tre

    with embedded_tre(Home.at(home)) as tre:
        result = tre.service.budget(tre.access.authenticate(token), project)

    def human(r: dict[str, Any]) -> None:
        protection = r["protection"]
        if "epsilon_left" in r:
            console.print(
                f"{r['project']}: differential privacy; epsilon {r['epsilon_left']:.4g} left "
                f"of {r['epsilon_total']:.4g}"
            )
        else:
            console.print(f"{r['project']}: disclosure control, rule set {protection['rules']}")

    report(result, as_json, human)


@review_app.command("queue")
@handle_errors
def queue(token: TokenOption, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Outputs waiting for your review (your own vote only; others' stay hidden)."""
    from confide.embedded import embedded_tre

    with embedded_tre(Home.at(home)) as tre:
        items = tre.review.queue(tre.access.authenticate(token))

    def human(r: dict[str, Any]) -> None:
        if not r["items"]:
            console.print("Nothing waiting for review.")
        for item in r["items"]:
            mine = item["your_vote"]
            console.print(
                f"[bold]{item['id']}[/] {item['project']}: {item['reason']} "
                f"({item['votes_in']} of {item['votes_needed']} votes in"
                + (f"; you voted {'approve' if mine['approve'] else 'reject'}" if mine else "")
                + ")"
            )
            console.print(f"  {item['sql']}")

    report({"items": items}, as_json, human)


@review_app.command("vote")
@handle_errors
def vote(
    query_id: Annotated[str, typer.Argument(help="The held output's query id.")],
    token: TokenOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the decision).")],
    approve: Annotated[
        bool, typer.Option("--approve/--reject", help="Approve or reject the release.")
    ],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vote to approve or reject a held output; two approvals release it, a rejection refuses."""
    from confide.embedded import embedded_tre

    with embedded_tre(Home.at(home)) as tre:
        item = tre.review.vote(tre.access.authenticate(token), query_id, approve, reason)
    report(item, as_json, lambda voted: console.print(f"Voted. The output is {voted['status']}."))


def mount(app: typer.Typer) -> None:
    app.add_typer(query_app, name="query")
    app.add_typer(review_app, name="review")
