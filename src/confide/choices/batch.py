"""Record many people's choices from one CSV file: GP practices, proxies, the national service.

Each row is ``nhs_number,choice,channel,date`` and, for someone acting for the person, two
more columns: ``actor`` (parent or lpa) and the proxy's detail (the child's date of birth, or
the LPA reference). ``choice`` is one of the four choices (recorded as opted out) or
``allow_all`` (every opt-out withdrawn). A header row, blank lines, spaces around values, a
byte-order mark and CRLF line endings are all accepted.

All or nothing: every line is checked first and every rejected line is reported with its
number and reason (never its NHS number); if any is rejected, nothing is recorded. The rows
are recorded through ``ChoicesRegistry.bulk_set`` in one transaction, so whatever listens to
the registry (erasure at the hub, the transparency log) hears of each change as it would of
one made on the web.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from confide.choices.model import (
    Actor,
    ChangeRequest,
    Channel,
    Choice,
    Proxy,
    parse_actor,
    parse_channel,
    parse_choice,
    utc,
)
from confide.choices.registry import ChoicesRegistry
from confide.common import exit_codes
from confide.common import nhs_number as nhs
from confide.common.errors import ConfideError, InvalidInput

COLUMNS = ("nhs_number", "choice", "channel", "date")
PROXY_COLUMNS = ("actor", "proxy_detail")
ALLOW_ALL = "allow_all"
MAX_BYTES = 64 * 1024 * 1024
_CHANGE = re.compile(r"^Change (\d+): (.*)$", re.DOTALL)


@dataclass
class ImportReport:
    """What an import did (counts only: no numbers)."""

    lines: int = 0
    recorded: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "recorded": self.recorded,
            "rejected": [{"line": n, "reason": r} for n, r in self.rejected],
        }


class ImportRejected(ConfideError):
    """At least one line was rejected, so nothing was recorded."""

    exit_code = exit_codes.INVALID_LINES

    def __init__(self, report: ImportReport) -> None:
        count = len(report.rejected)
        super().__init__(
            f"{count:,} {'line was' if count == 1 else 'lines were'} rejected, so nothing was "
            "recorded (the whole file is recorded or none of it).",
            hint="Correct the lines listed with their reasons and import the whole file again.",
        )
        self.report = report

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), **self.report.as_dict()}


def _named(parse: Any, raw: str, what: str, kind: Any, extra: tuple[str, ...] = ()) -> Any:
    """Parse an enum cell; the error lists the allowed values and never echoes the cell (a
    misplaced column could hold an NHS number)."""
    try:
        return parse(raw)
    except InvalidInput:
        allowed = ", ".join([*(k.value for k in kind), *extra])
        raise InvalidInput(f"the {what} must be one of: {allowed}") from None


def _changes(raw: str) -> dict[Choice, bool]:
    if raw.strip().lower().replace("-", "_") == ALLOW_ALL:
        return {c: False for c in Choice}
    return {_named(parse_choice, raw.strip(), "choice", Choice, (ALLOW_ALL,)): True}


def _when(raw: str) -> datetime:
    text = raw.strip()
    try:
        moment = (
            datetime.fromisoformat(text)
            if "T" in text or " " in text
            else datetime.combine(date.fromisoformat(text), datetime.min.time())
        )
    except ValueError:
        raise InvalidInput("the date must be YYYY-MM-DD (or an ISO date and time)") from None
    moment = utc(moment)
    if moment > utc(None):
        raise InvalidInput("the date is in the future")
    return moment


def _proxy(actor: Actor, detail: str) -> Proxy | None:
    if actor == Actor.PARENT:
        try:
            born = date.fromisoformat(detail) if detail else None
        except ValueError:
            raise InvalidInput(
                "a parent's detail is the child's date of birth, YYYY-MM-DD"
            ) from None
        return Proxy(actor, child_birth_date=born)
    if actor == Actor.LPA:
        return Proxy(actor, lpa_reference=detail or None)
    if detail:
        raise InvalidInput("a proxy detail was given, but the actor is not parent or lpa")
    return None


def _request(row: list[str]) -> ChangeRequest:
    cells = [cell.strip() for cell in row]
    if len(cells) not in (4, 5, 6):
        raise InvalidInput(
            f"expected 4 columns ({', '.join(COLUMNS)}), or 6 with "
            f"{', '.join(PROXY_COLUMNS)}; found {len(cells)}"
        )
    number, choice, channel_text, when = cells[:4]
    why = nhs.why_invalid(number) if number else "the NHS number is missing"
    if why:
        raise InvalidInput(why)
    channel = _named(parse_channel, channel_text, "channel", Channel)
    default_actor = Actor.GP if channel == Channel.GP_CODE else Actor.SELF
    actor = (
        _named(parse_actor, cells[4], "actor", Actor)
        if len(cells) > 4 and cells[4]
        else default_actor
    )
    detail = cells[5] if len(cells) > 5 else ""
    return ChangeRequest(
        number, _changes(choice), channel, actor, _proxy(actor, detail), _when(when)
    )


def _is_header(row: list[str]) -> bool:
    return bool(row) and row[0].strip().lower().replace(" ", "_") in ("nhs_number", "nhs")


def parse(data: bytes) -> tuple[list[ChangeRequest], list[int], ImportReport]:
    """The requests, the line each came from, and a report holding every rejected line."""
    report = ImportReport()
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            "The file is not UTF-8 text.", hint="Save it as CSV (UTF-8) and try again."
        ) from None
    requests: list[ChangeRequest] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if not requests and not report.rejected and _is_header(row):
            continue
        report.lines += 1
        try:
            requests.append(_request(row))
            lines.append(line)
        except InvalidInput as exc:
            report.rejected.append((line, exc.message))
    return requests, lines, report


def import_choices(registry: ChoicesRegistry, data: bytes) -> ImportReport:
    """Record every line of ``data``, or none: raises ``ImportRejected`` listing each bad line."""
    requests, lines, report = parse(data)
    if report.rejected:
        raise ImportRejected(report)
    if not requests:
        raise InvalidInput(
            "The file holds no choices to record.",
            hint="Each line is nhs_number,choice,channel,date.",
        )
    try:
        events = registry.bulk_set(requests)
    except InvalidInput as exc:
        # Checked against the registry's records (a proxy's authority): name the line.
        found = _CHANGE.match(exc.message)
        index = int(found.group(1)) - 1 if found else 0
        reason = found.group(2) if found else exc.message
        report.rejected.append((lines[index], reason))
        raise ImportRejected(report) from None
    report.recorded = len(events)
    return report
