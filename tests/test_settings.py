"""Operators' settings: declared once, each documented, none read behind the table's back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from confide.common import settings

ROOT = Path(__file__).parents[1]
NAME = re.compile(r"\bCONFIDE_[A-Z][A-Z_]*[A-Z]\b")


def test_docs_carry_the_table_generated_from_the_code() -> None:
    page = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
    start, end = page.index(settings.BEGIN), page.index(settings.END) + len(settings.END)
    assert page[start:end] == settings.render(), (
        "docs/operators.md is stale: paste `python -m confide.common.settings` over its table"
    )


def test_every_setting_has_a_name_help_and_documentation() -> None:
    page = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
    names = [s.name for s in settings.SETTINGS]
    assert len(set(names)) == len(names)
    for setting in settings.SETTINGS:
        assert NAME.fullmatch(setting.name) and setting.help.strip()
        assert f"`{setting.name}`" in page


def test_no_setting_is_used_without_being_declared() -> None:
    """Any CONFIDE_ name in the code is in the table (so it is documented too)."""
    declared = {s.name for s in settings.SETTINGS}
    used: dict[str, str] = {}
    for path in (ROOT / "src" / "confide").rglob("*.py"):
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            used.setdefault(name, str(path.relative_to(ROOT)))
    assert {n: where for n, where in used.items() if n not in declared} == {}


def test_value_reads_the_environment_then_the_default(monkeypatch) -> None:
    monkeypatch.delenv("CONFIDE_DATABASE_SCHEMA_PREFIX", raising=False)
    assert settings.value("CONFIDE_DATABASE_SCHEMA_PREFIX") == "confide_"
    monkeypatch.setenv("CONFIDE_DATABASE_SCHEMA_PREFIX", "")
    assert settings.value("CONFIDE_DATABASE_SCHEMA_PREFIX") == "confide_"  # empty is unset
    monkeypatch.setenv("CONFIDE_DATABASE_SCHEMA_PREFIX", "x_")
    assert settings.value("CONFIDE_DATABASE_SCHEMA_PREFIX") == "x_"
    with pytest.raises(KeyError):
        settings.value("CONFIDE_NOT_DECLARED")
