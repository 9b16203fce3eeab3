"""Shared by the tests that hold the source tree to a "defined in one place" rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "confide"

Scan = Callable[[str], list[int]]


def offending_lines(scan: Scan, allowed: set[str]) -> set[str]:
    """``module:line`` for every line ``scan`` finds in a module not in ``allowed``."""
    return {
        f"{path.relative_to(SRC)}:{line}"
        for path in SRC.rglob("*.py")
        if str(path.relative_to(SRC)) not in allowed
        for line in scan(path.read_text())
    }


def stale_exceptions(scan: Scan, not_yet_moved: set[str]) -> set[str]:
    """Modules listed as not yet moved in which ``scan`` no longer finds anything."""
    return {
        module
        for module in not_yet_moved
        if not (SRC / module).exists() or not scan((SRC / module).read_text())
    }
