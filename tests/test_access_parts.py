"""The access service is a facade over small parts: the parts are there, each stays small, and
using a part directly keeps every promise the service makes (one clock, one set of listeners,
one visibility rule)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from test_access_service import World, application, approved, build_world

import confide.access
from confide.access.directory import Directory
from confide.access.errors import PROJECT_NOT_FOUND, Forbidden
from confide.access.grants import Grants
from confide.access.model import ProjectStatus
from confide.access.projects import Projects
from confide.access.service import ProjectNotActive
from confide.access.tokens import Tokens
from confide.access.workflow import Workflow
from confide.common.errors import NotFound

ACCESS_SOURCES = Path(confide.access.__file__).parent
MODULE_LINES_MAX = 400

# The service's public methods before it was split; callers across Confide rely on each.
PUBLIC_METHODS = [
    "open",
    "close",
    "create_organisation",
    "organisation",
    "organisations",
    "add_person",
    "revoke_role",
    "person",
    "organisations_of",
    "create_client",
    "revoke_client",
    "issue_token",
    "authenticate",
    "principal_for",
    "project",
    "projects",
    "history",
    "apply",
    "submit",
    "approve",
    "reject",
    "suspend",
    "reinstate",
    "authorise_query",
    "audit_trail",
    "decisions",
]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
    w = build_world(tmp_path)
    yield w
    w.access.close()


def test_the_service_exposes_its_parts(world: World) -> None:
    access = world.access
    assert isinstance(access.directory, Directory)
    assert isinstance(access.tokens, Tokens)
    assert isinstance(access.projects, Projects)
    assert isinstance(access.workflow, Workflow)
    assert isinstance(access.grants, Grants)


def test_the_facade_keeps_every_public_method(world: World) -> None:
    access = world.access
    missing = [name for name in PUBLIC_METHODS if not callable(getattr(access, name, None))]
    assert missing == []


def test_no_access_module_grows_past_the_limit() -> None:
    sizes = {
        str(path.relative_to(ACCESS_SOURCES)): len(path.read_text().splitlines())
        for path in ACCESS_SOURCES.rglob("*.py")
    }
    assert "service.py" in sizes
    too_long = {name: lines for name, lines in sizes.items() if lines > MODULE_LINES_MAX}
    assert too_long == {}


def test_a_clock_swapped_after_opening_reaches_every_part(world: World) -> None:
    slug = approved(world, "asthma")
    alice = world.who("alice")
    assert world.access.grants.authorise_query(alice, slug).slug == slug
    later = world.clock.now + timedelta(days=400)
    world.access.clock = lambda: later
    assert world.access.projects.project(alice, slug).status is ProjectStatus.EXPIRED
    with pytest.raises(ProjectNotActive) as refused:
        world.access.grants.authorise_query(alice, slug)
    assert refused.value.status is ProjectStatus.EXPIRED
    with pytest.raises(ProjectNotActive):
        world.access.authorise_query(alice, slug)


def test_a_listener_added_after_opening_hears_changes_made_through_a_part(world: World) -> None:
    heard: list[str] = []
    world.access.listeners.append(lambda kind, _body: heard.append(kind))
    alice = world.who("alice")
    world.access.workflow.apply(alice, application(slug="asthma"))
    world.access.workflow.submit(alice, "asthma")
    with pytest.raises(Forbidden):
        world.access.workflow.apply(alice, application(slug="cover", purpose="insurance"))
    world.access.directory.revoke_role("uni", "alice2@people.example", "applicant")
    assert heard == ["project_applied", "project_submitted", "project_refused", "role_revoked"]


@pytest.mark.parametrize("slug", ["asthma", "no-such-project"])
def test_a_part_used_directly_answers_no_such_project_for_another_organisation(
    world: World, slug: str
) -> None:
    approved(world, "asthma")
    stranger = world.who("bob")
    attempts = (
        lambda: world.access.projects.project(stranger, slug),
        lambda: world.access.projects.history(stranger, slug),
        lambda: world.access.grants.authorise_query(stranger, slug),
        lambda: world.access.workflow.submit(stranger, slug),
    )
    for attempt in attempts:
        with pytest.raises(NotFound) as refused:
            attempt()
        assert refused.value.message == PROJECT_NOT_FOUND
    assert "asthma" not in {project.slug for project in world.access.projects(stranger)}
    assert "asthma" not in {project.slug for project in world.access.projects.visible(stranger)}
