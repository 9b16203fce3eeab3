"""The demo seed (three approved projects anyone can query) and the ``confide access`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from confide.access import Access, ProjectStatus, credentials
from confide.access import cli as access_cli
from confide.access.seed import seed_demo
from confide.common.home import Home


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many clients are made here; the production scrypt cost is tested elsewhere."""
    monkeypatch.setattr(credentials, "SCRYPT_N", 2**10)


def test_the_demo_has_three_approved_projects_with_working_tokens(
    opstore: str, tmp_path: Path
) -> None:
    with Access.open(Home.at(tmp_path)) as access:
        seeded = seed_demo(access)
        assert set(seeded["projects"]) == {"demo-research", "demo-planning", "demo-commercial"}
        expected = {
            "demo-research": ("demo-university", "academic", "research"),
            "demo-planning": ("demo-icb", "nhs", "planning"),
            "demo-commercial": ("demo-pharma", "commercial", "research"),
        }
        for slug, (org, kind, purpose) in expected.items():
            info = seeded["projects"][slug]
            assert info["status"] == "approved"
            creds = seeded["credentials"][info["credentials"]]
            who = access.authenticate(creds["access_token"])
            grant = access.authorise_query(who, slug)
            assert (grant.organisation, grant.recipient_kind.value, grant.purpose.value) == (
                org,
                kind,
                purpose,
            )
            assert grant.tables and grant.window_start < grant.window_end
            # the other demo organisations cannot see it
            for other in {"researcher", "planner", "commercial"} - {info["credentials"]}:
                stranger = access.authenticate(seeded["credentials"][other]["access_token"])
                assert slug not in {p.slug for p in access.projects(stranger)}
        checkers = [k for k, c in seeded["credentials"].items() if "output_checker" in c["roles"]]
        assert len(checkers) == 2
        # running it again changes no project and hands out fresh credentials
        again = seed_demo(access)
        assert {s: p["status"] for s, p in again["projects"].items()} == {
            s: "approved" for s in expected
        }
        assert (
            again["credentials"]["researcher"]["client_id"]
            != (seeded["credentials"]["researcher"]["client_id"])
        )
        admin = access.authenticate(again["credentials"]["administrator"]["access_token"])
        assert access.suspend(admin, "demo-commercial", "Demo of suspension.").status is (
            ProjectStatus.SUSPENDED
        )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Root."""

    access_cli.mount(app)
    runner = CliRunner()
    home = str(tmp_path / "home")

    def run(*args: str, ok: bool = True) -> dict:
        result = runner.invoke(app, ["access", *args, "--home", home, "--json"])
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0
        return json.loads(result.stdout.splitlines()[0] if not ok else result.stdout)

    return run


def test_the_cli_runs_the_whole_workflow(cli) -> None:
    cli("org", "create", "Data Access Committee", "--kind", "nhs", "--slug", "dac",
        "--approving-body")  # fmt: skip
    cli("org", "create", "University of Example", "--kind", "academic", "--slug", "uni")
    assert {o["slug"] for o in cli("org", "list")["organisations"]} == {"dac", "uni"}
    cli("person", "add", "--org", "uni", "--name", "A", "--email", "a@uni.example",
        "--role", "applicant")  # fmt: skip
    cli("person", "add", "--org", "dac", "--name", "B", "--email", "b@dac.example",
        "--role", "approver")  # fmt: skip
    tokens = {}
    for org, email in (("uni", "a@uni.example"), ("dac", "b@dac.example")):
        client = cli("client", "create", "--org", org, "--email", email)
        tokens[org] = cli(
            "token", "--client-id", client["client_id"], "--client-secret",
            client["client_secret"],
        )["access_token"]  # fmt: skip
    project = cli(
        "project", "apply", "--title", "Asthma outcomes", "--purpose", "research",
        "--legal-basis", "public_task", "--dataset", "events:code,date",
        "--dataset", "patients:*", "--from", "2015-01-01", "--to", "2024-12-31",
        "--expires", "2099-01-01", "--token", tokens["uni"], ok=False,
    )  # fmt: skip
    assert "expiry" in project["error"]  # more than five years ahead
    project = cli(
        "project", "apply", "--slug", "asthma", "--title", "Asthma outcomes",
        "--purpose", "research", "--legal-basis", "public_task",
        "--dataset", "events:code,date", "--from", "2015-01-01", "--to", "2024-12-31",
        "--expires", _in_days(90), "--token", tokens["uni"],
    )  # fmt: skip
    assert project["status"] == "draft"
    assert cli("project", "submit", "asthma", "--token", tokens["uni"])["status"] == "submitted"
    refused = cli("project", "approve", "asthma", "--reason", "mine", "--token", tokens["uni"],
                  ok=False)  # fmt: skip
    assert "approvers" in refused["error"]
    approved = cli("project", "approve", "asthma", "--reason", "Fine.", "--token", tokens["dac"])
    assert approved["status"] == "approved"
    shown = cli("project", "show", "asthma", "--token", tokens["uni"])
    assert [h["kind"] for h in shown["history"]][-1] == "project_approved"
    assert [p["slug"] for p in cli("project", "list", "--token", tokens["uni"])["projects"]] == [
        "asthma"
    ]
    insurance = cli(
        "project", "apply", "--title", "Premiums", "--purpose", "insurance",
        "--legal-basis", "consent", "--dataset", "events:code", "--from", "2015-01-01",
        "--to", "2024-12-31", "--expires", _in_days(90), "--token", tokens["uni"], ok=False,
    )  # fmt: skip
    assert "insurance" in insurance["error"]
    bad = cli("project", "list", "--token", "nonsense", ok=False)
    assert bad["error"] == "The access token is not valid or has expired."


def _in_days(days: int) -> str:
    from datetime import date, timedelta

    return (date.today() + timedelta(days=days)).isoformat()
