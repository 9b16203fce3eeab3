"""The researchers' guide is kept honest: its rule tables are generated from the code, and every
example in it runs as written and is released with its cells checked and labelled."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tre_world import TreWorld, build

from confide.tre.rules import RULE_SETS, perturbation_table, rules_table

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "researchers.md"


def _block(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", text, re.S)
    assert match, f"docs/researchers.md has no {name} block"
    return match.group(1)


def test_the_rule_tables_are_generated_from_the_code() -> None:
    text = GUIDE.read_text()
    assert _block(text, "rules") == rules_table()
    assert _block(text, "ptable") == perturbation_table(RULE_SETS["acro"])
    for name in RULE_SETS:
        assert f"`{name}`" in text


def _examples() -> list[tuple[str, object, dict[str, tuple[float, float]]]]:
    """Every SQL and JSON example, with the bounds its paragraph gives (``--bound n=a:b``)."""
    text = GUIDE.read_text()
    found = []
    for match in re.finditer(r"```(sql|json)\n(.*?)```", text, re.S):
        before = text[: match.start()].rstrip().rsplit("\n\n", 1)[-1]
        bounds = {
            name: (float(low), float(high))
            for name, low, high in re.findall(r"--bound (\w+)=([\d.]+):([\d.]+)", before)
        }
        body = match.group(2)
        query = json.loads(body) if match.group(1) == "json" else body
        found.append((f"example {len(found) + 1}", query, bounds))
    return found


@pytest.fixture
def tre(tmp_path: Path) -> TreWorld:
    """A fresh installation per example: each is the project's first query (a later one may
    rightly be held when its cells differ from an earlier example's by a few people)."""
    made = build(tmp_path, practices=3, patients=120, seed=11)
    yield made
    made.close()


def test_the_guide_has_the_documented_examples() -> None:
    assert len(_examples()) >= 5


@pytest.mark.parametrize(
    ("name", "query", "bounds"), _examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_example_in_the_guide_runs_and_is_released_with_its_cells_checked(
    tre: TreWorld, name: str, query: object, bounds: dict[str, tuple[float, float]]
) -> None:
    who, project = "researcher", "demo-research"
    if isinstance(query, str) and "registrations" in query:
        who, project = "planner", "demo-planning"  # the project approved for registrations
    outcome = tre.service.run(tre.principal(who), project, query, bounds=bounds or None)
    assert outcome.status == "released", (name, outcome.reason)
    result = outcome.result
    assert result["rows"] and result["notes"]  # every figure explained
    assert outcome.definition["measures"]
