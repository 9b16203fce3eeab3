"""``confide rollout``: waves, practices, the national pause and the notices.

Operators' commands act with the operator role on this installation's roll-out; practices'
commands (``notices ...``, ``practice join|decline|pause``) act for the practice named. Every
change is written to the transparency log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.rollout.model import Participation

if TYPE_CHECKING:
    from confide.rollout.notices import NoticeRegister

rollout_app = typer.Typer(help="The roll-out: waves, practices, notices and the national pause.")
area_app = typer.Typer(help="Roll-out areas and their waves.")
practice_app = typer.Typer(help="A practice's participation: join, decline or pause.")
notices_app = typer.Typer(help="Notices to patients, kept at the practice.")
rollout_app.add_typer(area_app, name="area")
rollout_app.add_typer(practice_app, name="practice")
rollout_app.add_typer(notices_app, name="notices")

OPERATOR = "operator"
PRACTICE = "practice"
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (published in the log).")]
OptionalReasonOption = Annotated[str | None, typer.Option("--reason")]
SourceOption = Annotated[str, typer.Option("--source")]
NhsNumbersOption = Annotated[Path, typer.Option("--nhs-numbers", help="File, one per line.")]
OnOption = Annotated[str | None, typer.Option("--on")]


@contextlib.contextmanager
def _rollout(home: Path | None) -> Iterator:
    from confide.composition import compose, open_rollout

    where = Home.at(home)
    with compose(where) as parties:
        rollout = open_rollout(where, parties.ledger)
        try:
            yield rollout
        finally:
            rollout.close()


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (use YYYY-MM-DD).") from None


def _done(message: str, as_json: bool, result: dict | None = None) -> None:
    report(result or {"done": message}, as_json, lambda _result: console.print(message))


def _change(
    home: Path | None,
    as_json: bool,
    act: Callable[[Any], Any],
    said: str | Callable[[Any], str],
) -> None:
    """Make one change to the roll-out (``act``), then say what was done (``said``)."""
    with _rollout(home) as rollout:
        outcome = act(rollout)
    _done(said(outcome) if callable(said) else said, as_json)


@rollout_app.command("status")
@handle_errors
def status_cmd(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Show what is live, paused or declined, and the notice and waiting-period figures."""
    from confide.rollout.figures import public_figures

    with _rollout(home) as rollout:
        figures = public_figures(rollout.store)

    def human(shown: dict) -> None:
        national = shown["national"]
        console.print(
            "[red]Paused nationally[/]: " + (national["reason"] or "")
            if national["paused"]
            else "[green]Running nationally[/]"
        )
        console.print(f"Waiting period: {shown['waiting_weeks']} weeks")
        for area in shown["areas"]:
            console.print(f"  area {area['area']} wave {area['wave']}: {area['status']}")
        for practice in shown["practices"]:
            console.print(
                f"  practice {practice['ods']}: {practice['status']}"
                f" (held back {practice['held_back']})"
            )

    report(figures, as_json, human)


@rollout_app.command("start")
@handle_errors
def start_cmd(
    weeks: Annotated[int | None, typer.Option("--weeks", help="Waiting period.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start the roll-out: from now on only practices that joined, in live areas, send data."""
    _change(
        home,
        as_json,
        lambda rollout: rollout.start(role=OPERATOR, weeks=weeks),
        "The roll-out has started.",
    )


@rollout_app.command("waiting-period")
@handle_errors
def waiting_cmd(
    weeks: Annotated[int, typer.Argument(help="Weeks between a notice and the first upload.")],
    reason: OptionalReasonOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the waiting period (default 8 weeks)."""
    _change(
        home,
        as_json,
        lambda rollout: rollout.set_waiting_period(weeks, role=OPERATOR, reason=reason),
        f"The waiting period is {weeks} weeks.",
    )


@rollout_app.command("pause")
@handle_errors
def pause_cmd(reason: ReasonOption, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Pause everything nationally: extraction, ingest and releases stop at once."""
    _change(
        home,
        as_json,
        lambda rollout: rollout.pause(reason, role=OPERATOR),
        "Confide is paused nationally.",
    )


@rollout_app.command("resume")
@handle_errors
def resume_cmd(reason: ReasonOption, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Resume after a national pause."""
    _change(
        home, as_json, lambda rollout: rollout.resume(reason, role=OPERATOR), "Confide has resumed."
    )


@area_app.command("set")
@handle_errors
def area_set_cmd(
    area: Annotated[str, typer.Argument(help="Area code, e.g. E54000050.")],
    wave: Annotated[int, typer.Option("--wave", help="0 for the pilot, then 1, 2, ...")],
    start: Annotated[str, typer.Option("--start", help="Published start date (YYYY-MM-DD).")],
    name: Annotated[str, typer.Option("--name", help="The area's name.")] = "",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put an area in a wave with a published start date."""
    _change(
        home,
        as_json,
        lambda rollout: rollout.set_area(
            area, name=name, wave=wave, start_date=_day(start), role=OPERATOR
        ),
        lambda row: f"Area {row.area} is in wave {row.wave}, from {row.start_date}.",
    )


@area_app.command("pause")
@handle_errors
def area_pause_cmd(
    area: str, reason: ReasonOption, home: HomeOption = None, as_json: JsonOption = False
) -> None:
    """Pause one area."""
    _change(
        home,
        as_json,
        lambda rollout: rollout.pause_area(area, reason, role=OPERATOR),
        f"Area {area} is paused.",
    )


@area_app.command("resume")
@handle_errors
def area_resume_cmd(
    area: str, reason: ReasonOption, home: HomeOption = None, as_json: JsonOption = False
) -> None:
    """Resume one area."""
    _change(
        home,
        as_json,
        lambda rollout: rollout.resume_area(area, reason, role=OPERATOR),
        f"Area {area} has resumed.",
    )


def _practice(
    ods: str,
    status: Participation,
    area: str | None,
    reason: str | None,
    home: Path | None,
    as_json: bool,
) -> None:
    _change(
        home,
        as_json,
        lambda rollout: rollout.set_practice(ods, status, role=PRACTICE, area=area, reason=reason),
        lambda row: f"Practice {row.ods}: {row.status.value}.",
    )


@practice_app.command("join")
@handle_errors
def join_cmd(
    ods: str,
    area: Annotated[str, typer.Option("--area", help="The practice's roll-out area.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """The practice joins (or rejoins after a pause)."""
    _practice(ods, Participation.JOINED, area, None, home, as_json)


@practice_app.command("decline")
@handle_errors
def decline_cmd(
    ods: str,
    reason: OptionalReasonOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """The practice declines: it sends nothing and the hub refuses its submissions."""
    _practice(ods, Participation.DECLINED, None, reason, home, as_json)


@practice_app.command("pause")
@handle_errors
def practice_pause_cmd(
    ods: str, reason: ReasonOption, home: HomeOption = None, as_json: JsonOption = False
) -> None:
    """The practice pauses its participation."""
    _practice(ods, Participation.PAUSED, None, reason, home, as_json)


@notices_app.command("send")
@handle_errors
def send_cmd(
    source: Annotated[str, typer.Option("--source", help="The practice's ODS code.")],
    recipients: Annotated[
        Path, typer.Option("--recipients", help="CSV: nhs_number,name,address,email,channel")
    ],
    practice_name: Annotated[str, typer.Option("--practice-name")] = "Your GP practice",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send notices (letters as one printable PDF batch; email and NHS App via the notifier)."""
    from confide.practice.keys import check_ods
    from confide.rollout.notify import OutboxNotifier
    from confide.rollout.sending import read_recipients, send

    ods = check_ods(source)
    where = Home.at(home)
    people, bad = read_recipients(recipients)
    with _rollout(home) as rollout:
        weeks = rollout.state().waiting_weeks
        sent = send(
            where, ods, people, OutboxNotifier(where.root / "outbox"),
            practice_name=practice_name, weeks=weeks,
        )  # fmt: skip
        sent.unusable_rows = bad
        _publish(rollout, where, ods)
    result = sent.as_dict()

    def human(shown: dict) -> None:
        console.print(f"Notices sent: {shown['sent']}")
        if shown["batch"]:
            console.print(f"  letters to print: {shown['batch']}")
        if shown["unusable_rows"]:
            console.print(f"  [yellow]rows not used[/] (check them): {shown['unusable_rows']}")

    report(result, as_json, human)


def _publish(rollout, where: Home, ods: str) -> None:
    from confide.rollout.notices import NoticeRegister

    with NoticeRegister(where) as notice_register:
        weeks = notice_register.weekly_counts(ods)
    rollout.publish_notices(ods, weeks)


def _numbers(path: Path) -> list[str]:
    try:
        lines = Path(path).read_text().split()
    except (OSError, UnicodeDecodeError):
        raise InvalidInput("The list of NHS numbers cannot be read (one per line).") from None
    return [line.strip() for line in lines if line.strip()]


def _mark_notices(
    source: str,
    nhs_numbers: Path,
    on: str | None,
    home: Path | None,
    mark: Callable[[NoticeRegister, str, list[str], Any, date], int],
    how: Any,
) -> tuple[str, Home, list[str]]:
    """Mark the notices of the people listed in ``nhs_numbers`` in the practice's notice
    register (``mark``, one of its methods, with ``how``); the practice's ODS code, home and
    list."""
    from confide.practice.keys import check_ods
    from confide.rollout.notices import NoticeRegister

    ods, where = check_ods(source), Home.at(home)
    numbers = _numbers(nhs_numbers)
    with NoticeRegister(where) as notice_register:
        mark(notice_register, ods, numbers, how, _day(on) or date.today())
    return ods, where, numbers


@notices_app.command("returned")
@handle_errors
def returned_cmd(
    source: SourceOption,
    nhs_numbers: NhsNumbersOption,
    undeliverable: Annotated[bool, typer.Option("--undeliverable")] = False,
    on: OnOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record notices that came back (their people are held until resolved)."""
    from confide.rollout.model import NoticeStatus
    from confide.rollout.notices import NoticeRegister

    status = NoticeStatus.UNDELIVERABLE if undeliverable else NoticeStatus.RETURNED
    mark = NoticeRegister.statuses
    ods, where, numbers = _mark_notices(source, nhs_numbers, on, home, mark, status)
    with _rollout(home) as rollout:
        _publish(rollout, where, ods)
    _done(f"{len(numbers)} notices recorded as {status.value}.", as_json, {status: len(numbers)})


@notices_app.command("resolve")
@handle_errors
def resolve_cmd(
    source: SourceOption,
    nhs_numbers: NhsNumbersOption,
    told_another_way: Annotated[bool, typer.Option("--told-another-way")] = False,
    on: OnOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """The practice confirmed these addresses (or told them another way): their waiting
    period runs from today."""
    from confide.rollout.model import Resolution
    from confide.rollout.notices import NoticeRegister

    how = Resolution.TOLD_ANOTHER_WAY if told_another_way else Resolution.ADDRESS_CONFIRMED
    mark = NoticeRegister.resolve_many
    _ods, _where, numbers = _mark_notices(source, nhs_numbers, on, home, mark, how)
    _done(f"{len(numbers)} notices resolved ({how.value}).", as_json, {how: len(numbers)})


def mount(app: typer.Typer) -> None:
    """Attach ``confide rollout`` to the root app."""
    app.add_typer(rollout_app, name="rollout")
