"""No entry point can skip the wiring: every CLI command, HTTP route and web page gets its
parties from ``confide.composition``, and a party's ports are required.

The scan reads the source of every entry-point module (CLI commands, HTTP APIs, the web app
and its pages, the demo) and fails on any call that builds a party itself, directly
(``Hub(...)``) or through its opener (``ChoicesRegistry.open(...)``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import confide
from confide.common.home import Home
from confide.events.relay import MissingReceiver, Relay
from confide.events.types import ChoiceChanged

SRC = Path(confide.__file__).resolve().parent

# Every class (or helper) that makes a party or a party's store.
PARTY_MAKERS = {
    "Pseudonymiser",
    "Hub",
    "HubStore",
    "RecordStore",
    "ChoicesRegistry",
    "IdentityService",
    "Ledger",
    "LogStore",
    "Access",
    "SaltStore",
    "TreStore",
    "QueryService",
    "ReviewQueue",
    "Rollout",
    "query_service",
    "review_queue",
    "open_hub",
}
# Where parties are made: the composition, and each party's own package internals.
COMPOSERS = {SRC / "composition.py"}


def entry_point_modules() -> list[Path]:
    """CLI command modules, HTTP API modules, the web app and its pages, the demo."""
    found = set(SRC.glob("*/cli.py")) | set(SRC.glob("*/*_cli.py")) | set(SRC.glob("*/api.py"))
    found |= set(SRC.glob("**/linkage/cli.py")) | set(SRC.glob("cli/*.py"))
    found |= set(SRC.glob("web/**/*.py")) | set(SRC.glob("demo/*.py"))
    # A witness is another organisation's service, not a party of this installation.
    return sorted(p for p in found if "witness/" not in str(p.relative_to(SRC)) + "/")


def party_constructions(source: str) -> list[str]:
    """``Name(...)`` or ``Name.open(...)`` calls of a party maker in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in PARTY_MAKERS:
            found.append(f"{func.id}(...) at line {node.lineno}")
        elif (
            isinstance(func, ast.Attribute)
            and func.attr == "open"
            and isinstance(func.value, ast.Name)
            and func.value.id in PARTY_MAKERS
        ):
            found.append(f"{func.value.id}.open(...) at line {node.lineno}")
    return found


def test_the_scan_covers_every_kind_of_entry_point() -> None:
    names = {str(p.relative_to(SRC)) for p in entry_point_modules()}
    for expected in ("choices/cli.py", "hub/cli.py", "access/cli.py", "access/api.py",
                     "web/app.py", "web/cli.py", "ledger/cli.py", "demo/flow.py",
                     "pseudonymiser/linkage/cli.py", "events/cli.py"):  # fmt: skip
        assert expected in names


def test_the_scan_finds_a_party_built_by_hand() -> None:
    """The check can fail: each way of building a party is caught."""
    assert party_constructions("r = ChoicesRegistry.open(home)")
    assert party_constructions("hub = Hub(home, p)")
    assert party_constructions("s = query_service(home, access=a)")
    assert not party_constructions("with compose(home) as parties: parties.choices.set()")


@pytest.mark.parametrize("module", entry_point_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_entry_point_builds_a_party(module: Path) -> None:
    assert module not in COMPOSERS
    found = party_constructions(module.read_text())
    assert not found, (
        f"{module.relative_to(SRC)} builds parties itself ({', '.join(found)}); get them from "
        "confide.composition so the wiring (erasure, type 1, the ledger) cannot be skipped."
    )


def test_the_pseudonymiser_has_no_default_for_its_choices_ports(tmp_path) -> None:
    from confide.pseudonymiser import Pseudonymiser

    with pytest.raises(TypeError):
        Pseudonymiser.open(Home.at(tmp_path))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Pseudonymiser.open(Home.at(tmp_path), shares_nothing=None, on_type1=None)  # type: ignore[arg-type]


def test_linkage_has_no_default_for_who_shares_nothing(tmp_path) -> None:
    import duckdb

    from confide.pseudonymiser.linkage.incremental import Linkage

    with pytest.raises(TypeError):
        Linkage(duckdb.connect(), tmp_path)  # type: ignore[call-arg]


def test_a_relay_without_a_receiver_for_every_event_is_refused() -> None:
    with pytest.raises(MissingReceiver, match="erasure_requested"):
        Relay([], {ChoiceChanged: lambda events: None})


def test_the_composition_wires_the_pseudonymiser_to_the_registry(tmp_path) -> None:
    from confide.composition import compose

    with compose(Home.at(tmp_path)) as parties:
        parties.choices.set("9990000018", {"share_nothing": True}, "online")
        assert parties.pseudonymiser.shares_nothing(["9990000018", "9990000026"]) == [True, False]


def test_parties_asked_for_at_once_are_built_once(tmp_path) -> None:
    """Web requests run in threads: each party is opened and wired once, however many ask."""
    import threading

    from confide.composition import compose

    with compose(Home.at(tmp_path)) as parties:
        seen: list[object] = []
        start = threading.Barrier(4)

        def ask() -> None:
            start.wait()
            seen.append(parties.choices)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(s) for s in seen}) == 1
        assert len(parties.choices.batch_listeners) == 1  # wired once
