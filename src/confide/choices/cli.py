"""Commands of the choices registry: set, show, history, check, import, stats, record-lpa."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from confide.cli.failures import describe, show
from confide.cli.operator import LookupReason, OperatorEmail, OperatorOrg, logged_lookup
from confide.cli.output import HomeOption, JsonOption, console, err_console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home

if TYPE_CHECKING:
    from confide.choices.registry import ChoicesRegistry

choices_app = typer.Typer(
    help="The patients' choices registry: record opt-outs, show them, clean lists.",
    no_args_is_help=True,
)

NhsOption = Annotated[str, typer.Option("--nhs-number", help="The person's 10-digit NHS number.")]


@contextmanager
def _registry(home: Path | None, *, reading: bool = False) -> Iterator[ChoicesRegistry]:
    """The registry from the composition: its changes' events are delivered (erasure, the
    ledger) before the command ends. Commands that only read refuse a missing home rather
    than create it."""
    from confide.composition import compose

    with compose(Home.existing(home) if reading else Home.at(home)) as parties:
        yield parties.choices


def _print_choices(r: dict) -> None:
    held = [name for name, on in r["choices"].items() if on]
    if held:
        console.print("Opted out of: " + ", ".join(held))
    else:
        console.print("No opt-out recorded: data may be used for approved purposes.")
    for choice, facts in sorted(r.get("channels", {}).items()):
        holding = [channel for channel, on in facts.items() if on]
        if holding:
            console.print(f"  {choice}: held through {', '.join(sorted(holding))}")


@choices_app.command("set")
@handle_errors
def set_cmd(
    nhs_number: NhsOption,
    channel: Annotated[
        str, typer.Option("--channel", help="online, gp_code, letter, phone or proxy.")
    ],
    share_nothing: Annotated[bool, typer.Option("--share-nothing", help="Share nothing.")] = False,
    no_research: Annotated[bool, typer.Option("--no-research", help="No research.")] = False,
    no_planning: Annotated[bool, typer.Option("--no-planning", help="No planning.")] = False,
    no_commercial: Annotated[
        bool, typer.Option("--no-commercial", help="No commercial use.")
    ] = False,
    allow_all: Annotated[bool, typer.Option("--allow-all", help="Turn every choice off.")] = False,
    clear: Annotated[
        list[str] | None, typer.Option("--clear", help="Turn this choice off (repeatable).")
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="self, parent or lpa.")] = "self",
    child_birth_date: Annotated[
        str | None, typer.Option("--child-birth-date", help="For --actor parent: YYYY-MM-DD.")
    ] = None,
    lpa_reference: Annotated[
        str | None, typer.Option("--lpa-reference", help="For --actor lpa: the LPA reference.")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="When the choice took effect (ISO; default now).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a change to a person's choices."""
    from confide.choices.model import Actor, Choice, Proxy, parse_actor, parse_choice

    changes: dict[Choice, bool] = {}
    if allow_all:
        changes.update({c: False for c in Choice})
    for name in clear or []:
        changes[parse_choice(name)] = False
    for flag, choice in (
        (share_nothing, Choice.SHARE_NOTHING),
        (no_research, Choice.NO_RESEARCH),
        (no_planning, Choice.NO_PLANNING),
        (no_commercial, Choice.NO_COMMERCIAL),
    ):
        if flag:
            if changes.get(choice) is False:
                raise InvalidInput(f"{choice.value} is both turned on and cleared.")
            changes[choice] = True
    who = parse_actor(actor)
    proxy = None
    if who in (Actor.PARENT, Actor.LPA):
        birth = None
        if child_birth_date:
            try:
                birth = date.fromisoformat(child_birth_date)
            except ValueError:
                raise InvalidInput("--child-birth-date must be YYYY-MM-DD.") from None
        proxy = Proxy(who, child_birth_date=birth, lpa_reference=lpa_reference)
    moment = None
    if at:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise InvalidInput("--at must be an ISO date or date-time.") from None
    with _registry(home) as registry:
        event = registry.set(nhs_number, changes, channel, who, proxy, moment)
        current = registry.current(nhs_number).as_dict()
        facts = registry.facts(nhs_number)
        # A withdrawal through one channel leaves another channel's fact in force: say which.
        still_held = {
            choice.value: sorted(
                channel.value for channel, on in facts.get(choice, {}).items() if on
            )
            for choice, value in changes.items()
            if not value and current[choice.value]
        }
        result = {"event": event.as_dict(), "choices": current, "still_held": still_held}

    def human(r: dict) -> None:
        console.print(f"[green]Recorded[/] change {r['event']['change_id']}.")
        _print_choices(r)
        for name, through in r["still_held"].items():
            console.print(
                f"[yellow]{name} is still held through {', '.join(through)}[/]: a change "
                "through one channel never undoes another; withdraw it through that channel."
            )

    report(result, as_json, human)


@choices_app.command("show")
@handle_errors
def show_cmd(
    nhs_number: NhsOption,
    operator: OperatorEmail,
    organisation: OperatorOrg,
    reason: LookupReason,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a person's current choices, and which channels hold each one (operators only;
    the look-up is logged)."""
    logged_lookup(home, what="choices", email=operator, org=organisation, reason=reason)
    with _registry(home, reading=True) as registry:
        result = {
            "choices": registry.current(nhs_number).as_dict(),
            "channels": {
                choice.value: {channel.value: on for channel, on in facts.items()}
                for choice, facts in registry.facts(nhs_number).items()
            },
        }
    report(result, as_json, _print_choices)


@choices_app.command("history")
@handle_errors
def history_cmd(
    nhs_number: NhsOption,
    operator: OperatorEmail,
    organisation: OperatorOrg,
    reason: LookupReason,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show every change to a person's choices, oldest first (operators only; logged)."""
    logged_lookup(home, what="choices_history", email=operator, org=organisation, reason=reason)
    with _registry(home, reading=True) as registry:
        result = {"history": [event.as_dict() for event in registry.history(nhs_number)]}

    def human(r: dict) -> None:
        if not r["history"]:
            console.print("No changes recorded.")
        for e in r["history"]:
            what = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in e["changes"].items())
            console.print(f"{e['effective_at'][:19]}  {what}  ({e['channel']}, {e['actor']})")

    report(result, as_json, human)


@choices_app.command("check")
@handle_errors
def check_cmd(
    file: Annotated[Path, typer.Argument(help="NHS numbers, one per line, each with a comma.")],
    purpose: Annotated[str, typer.Option("--purpose", help="research, planning, …")],
    recipient: Annotated[
        str, typer.Option("--recipient", help="nhs, academic, charity or commercial.")
    ],
    legal_basis: Annotated[
        str, typer.Option("--legal-basis", help="public_task, consent, copi_reg3, …")
    ] = "public_task",
    output_form: Annotated[
        str, typer.Option("--output-form", help="aggregate, dp_aggregate or record_level.")
    ] = "record_level",
    preset: Annotated[str, typer.Option("--preset", help="strict or ndoo_2018.")] = "strict",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the cleaned list here (default: stdout).")
    ] = None,
    all_or_nothing: Annotated[
        bool,
        typer.Option(
            "--all-or-nothing",
            help="Return no list at all if any line is invalid, as the national service does.",
        ),
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the cleaned list (those who may be included) in the same format.

    Invalid NHS numbers and malformed lines are reported on standard error with line numbers,
    and the command then exits with its own code (10, see docs/errors.md); with
    --all-or-nothing no list is returned when any line is invalid. Line endings are kept
    (CRLF stays CRLF); spaces around the number and the comma are tolerated.
    """
    from confide.choices.check import (
        check_file,
        invalid_lines,
        opted_out_for,
        read_buffer,
        write_atomically,
    )

    read_buffer(file)  # a missing or unreadable list is reported before anything else
    with _registry(home, reading=True) as registry:
        opted_out, terms = opted_out_for(
            registry, purpose, recipient, legal_basis, output_form, preset
        )

    def fill(sink):
        return check_file(file, opted_out, sink, sys.stderr, all_or_nothing=all_or_nothing)

    if out is not None:
        summary = write_atomically(out, fill, keep=lambda s: not (all_or_nothing and s.problems))
    else:
        summary = fill(sys.stdout.buffer)
        sys.stdout.flush()
    result = {
        **summary.as_dict(),
        "opt_outs_applied": terms.opt_outs_applied,
        "exemption": terms.exemption,
        "all_or_nothing": all_or_nothing,
        "returned": not (all_or_nothing and summary.problems),
    }
    problem = invalid_lines(summary, all_or_nothing) if summary.problems else None
    if problem is not None:
        result.update({"exit_code": problem.exit_code, **problem.as_dict()})
    text = (
        f"Checked {result['lines']:,} {'line' if result['lines'] == 1 else 'lines'}: "
        f"{result['included']:,} may be included, "
        f"{result['excluded']:,} excluded by their choices, {result['invalid']:,} invalid NHS "
        f"numbers, {result['malformed']:,} malformed lines."
    )
    if out is not None:
        report(result, as_json, lambda shown: err_console.print(text, highlight=False))
    elif as_json:
        import orjson

        sys.stderr.write(orjson.dumps(result).decode() + "\n")
    else:
        err_console.print(text, highlight=False)
    if problem is not None:
        # Standard output holds the list (or the JSON summary): the error goes to stderr only.
        show(describe(problem), as_json=False)
        raise typer.Exit(problem.exit_code)


@choices_app.command("import")
@handle_errors
def import_cmd(
    file: Annotated[
        Path, typer.Argument(help="CSV: nhs_number,choice,channel,date (see docs/choices.md).")
    ],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record many people's choices from a CSV file: every line, or none.

    Each rejected line is reported on standard error with its number and reason, and then
    nothing is recorded (exit code 10, see docs/errors.md).
    """
    from confide.choices.batch import ImportRejected, import_choices

    data = _read_file(file)
    try:
        with _registry(home) as registry:
            done = import_choices(registry, data)
    except ImportRejected as exc:
        for line, reason in exc.report.rejected:
            err_console.print(f"line {line}: {escape(reason)}", highlight=False)
        report(exc.as_dict() | {"exit_code": exc.exit_code}, as_json, lambda shown: None)
        show(describe(exc), as_json=False)
        raise typer.Exit(exc.exit_code) from None
    report(
        done.as_dict(),
        as_json,
        lambda shown: console.print(
            f"[green]Recorded[/] {shown['recorded']:,} changes from {shown['lines']:,} lines."
        ),
    )


def _read_file(path: Path) -> bytes:
    from confide.common.errors import reading_file

    with reading_file(path, "is a folder; give the CSV file."):
        return path.read_bytes()


@choices_app.command("stats")
@handle_errors
def stats_cmd(
    by: Annotated[str, typer.Option("--by", help="practice or area.")] = "practice",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Opt-out counts by month and place, small numbers suppressed (≤7 hidden, rounded to 5)."""
    from confide.choices.statistics import GROUPINGS

    if by not in GROUPINGS:
        raise InvalidInput("--by must be practice or area.")
    with _registry(home, reading=True) as registry:
        rows = registry.publishable_statistics(by)

    def human(r: dict) -> None:
        from rich.table import Table

        table = Table("month", by, "choice", "people")
        for row in r["rows"]:
            table.add_row(
                row["month"],
                row[by],
                row["choice"],
                "≤7" if row["redacted"] else str(row["people"]),
            )
        console.print(table)

    report({"by": by, "rows": rows}, as_json, human)


@choices_app.command("record-lpa")
@handle_errors
def record_lpa_cmd(
    nhs_number: NhsOption,
    reference: Annotated[str, typer.Option("--reference", help="The LPA reference.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a registered lasting power of attorney so its holder may act for the person."""
    with _registry(home) as registry:
        ref = registry.record_lpa(nhs_number, reference)
    report({"lpa_reference": ref}, as_json, lambda shown: console.print(f"Recorded LPA {ref}."))


def mount(app: typer.Typer) -> None:
    """Attach this party's commands to the root app."""
    app.add_typer(choices_app, name="choices")
