"""The roll-out guide keeps up with the code: every command, ledger action, held-back reason
and HTTP endpoint is in docs/rollout.md."""

from __future__ import annotations

from pathlib import Path

import typer

from confide.ledger.entries import ENTRY_SCHEMAS
from confide.rollout.api import make_router
from confide.rollout.cli import rollout_app
from confide.rollout.waiting import Held

DOC = (Path(__file__).resolve().parent.parent / "docs" / "rollout.md").read_text()


def _commands(app: typer.Typer, prefix: str) -> list[str]:
    found = [f"{prefix} {c.name}" for c in app.registered_commands]
    for group in app.registered_groups:
        found += _commands(group.typer_instance, f"{prefix} {group.name}")
    return found


def test_every_command_is_in_the_guide() -> None:
    commands = _commands(rollout_app, "confide rollout")
    assert len(commands) >= 12
    for command in commands:
        assert command in DOC, command


def test_every_ledger_action_and_held_reason_is_in_the_guide() -> None:
    actions = ENTRY_SCHEMAS["rollout"]["action"].check.__doc__ or ""
    for action in actions.removeprefix("one of ").split(", "):
        assert f"`{action}`" in DOC, action
    for reason in Held:
        assert f"`held_{reason.value}`" in DOC, reason


def test_every_endpoint_is_in_the_guide(tmp_path) -> None:
    router = make_router(None, None, None)  # type: ignore[arg-type]
    for route in router.routes:
        path = route.path.replace("/pause", "").replace("/resume", "")
        assert path in DOC, route.path
