"""Every "now" comes from confide.common.clock: no module reads the time on its own."""

from __future__ import annotations

import ast

from source_rules import offending_lines, stale_exceptions

THE_CLOCK = "common/clock.py"

# Modules still reading the time themselves while their move to the clock is under way.
# Empty this set as they move; the test then holds the whole source tree to the rule.
NOT_YET_MOVED: set[str] = set()


def _own_clock_reads(source: str) -> list[int]:
    """Lines calling ``datetime.now``/``datetime.utcnow`` (however ``datetime`` is reached)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in {"now", "utcnow"}:
            continue
        owner = node.func.value
        name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
        if name == "datetime":
            lines.append(node.lineno)
    return lines


def test_the_scan_finds_every_spelling_of_reading_the_clock() -> None:
    source = (
        "import datetime as dt\nfrom datetime import UTC, datetime\n"
        "a = datetime.now(UTC)\nb = datetime.now()\nc = dt.datetime.now(tz=UTC)\n"
        "d = datetime.utcnow()\ne = datetime . now ( UTC )\n"
    )
    assert _own_clock_reads(source) == [3, 4, 5, 6, 7]
    assert _own_clock_reads("from confide.common.clock import utcnow\nx = utcnow()\n") == []


def test_only_the_clock_reads_the_time() -> None:
    found = offending_lines(_own_clock_reads, NOT_YET_MOVED | {THE_CLOCK})
    assert not found, f"read the time through confide.common.clock instead: {sorted(found)}"


def test_the_not_yet_moved_list_names_only_modules_that_still_need_it() -> None:
    """A module that has moved leaves the list, so the list can only shrink."""
    stale = stale_exceptions(_own_clock_reads, NOT_YET_MOVED)
    assert not stale, f"remove from NOT_YET_MOVED: {sorted(stale)}"
