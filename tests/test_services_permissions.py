"""The table of who may call which method of which party, and record which ledger entries: it
names only what the parties serve and the ledger knows, and the operators' guide shows it."""

from __future__ import annotations

import re
from pathlib import Path

from confide.ledger.entries import KINDS
from confide.services.permissions import MAY_CALL, MAY_WRITE, may_call, may_write, rules_table
from confide.services.rpc import METHODS

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "operators.md"


def test_the_guide_shows_the_table_generated_from_the_code() -> None:
    match = re.search(
        r"<!-- permissions:start -->\n(.*?)\n<!-- permissions:end -->", GUIDE.read_text(), re.S
    )
    assert match, "docs/operators.md has no permissions block"
    assert match.group(1) == rules_table()


def test_the_table_names_only_methods_the_parties_serve_and_kinds_the_ledger_knows() -> None:
    served = {party: set(methods) for party, methods in METHODS.items()}
    served["hub"] |= {f"{part}.{m}" for part in ("tre", "review") for m in METHODS[part]}
    for caller, parties in MAY_CALL.items():
        for party, methods in parties.items():
            assert caller != party and methods <= served[party], (caller, party)
    assert all(kinds <= set(KINDS) for kinds in MAY_WRITE.values())
    appends = {"append", "append_many", "append_once"}
    assert all(MAY_CALL[party]["ledger"] & appends for party in MAY_WRITE)  # it can send them


def test_what_is_not_in_the_table_is_refused() -> None:
    assert not may_call("hub", "choices", "set")
    assert not may_call("access", "pseudonymiser", "pseudonyms_for")
    assert not may_call("web", "pseudonymiser", "rotate_key")
    assert not may_call("mallory", "ledger", "head")
    assert may_call("operator", "pseudonymiser", "rotate_key")
    assert not may_write("web", "append", ["choice_changed", {}], {})
    assert not may_write("web", "append_many", [[("rollout", {}), ("release", {})]], {})
    assert not may_write("access", "append_once", [[("k", "choice_changed", {})]], {})
    assert not may_write("hub", "append", [], {})  # names no kind
    assert may_write("choices", "append_once", [[("k", "choice_changed", {})]], {})
    assert may_write("operator", "append", ["key_rotation", {}], {})
