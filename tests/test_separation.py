"""The parties stay apart: checked on the import graph, as a reviewer would."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "confide"


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (SRC / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
        found[str(path.relative_to(SRC))] = names
    return found


def test_the_hub_never_imports_the_pseudonymisers_keys_or_internals() -> None:
    for module, names in _imports("hub").items():
        for name in names:
            assert not name.startswith("confide.pseudonymiser"), (module, name)


def test_only_the_pseudonymiser_touches_its_keys() -> None:
    for package in ("hub", "practice", "choices", "ledger", "synth", "demo", "cli", "common"):
        if not (SRC / package).exists():
            continue
        for module, names in _imports(package).items():
            assert "confide.pseudonymiser.keys" not in names, module
            assert "confide.pseudonymiser.index" not in names, module


def test_the_practice_agent_only_uses_the_pseudonymisers_public_key() -> None:
    for module, names in _imports("practice").items():
        used = {n for n in names if n.startswith("confide.pseudonymiser")}
        assert used <= {"confide.pseudonymiser", "confide.pseudonymiser.public_key"}, module


def test_the_log_never_imports_its_witnesses() -> None:
    """The ledger reaches witnesses only through the add-checkpoint request and reply."""
    for module, names in _imports("ledger").items():
        assert not any(n.startswith("confide.witness") for n in names), module


def test_a_witness_uses_only_the_logs_formats_never_its_store() -> None:
    formats = {
        "confide.ledger.checkpoint",
        "confide.ledger.cosignature",
        "confide.ledger.merkle",
        "confide.ledger.add_checkpoint",
    }
    for module, names in _imports("witness").items():
        for name in names:
            if name.startswith("confide.ledger") and name != "confide.ledger":
                assert any(name == f or name.startswith(f + ".") for f in formats), (module, name)
