"""Commands of the access party: organisations, people, API clients, tokens and projects.

Operator commands (``org``, ``person``, ``client``) act on the local store directly. Project
commands act for a person, identified by a bearer token (``--token`` or
``$CONFIDE_ACCESS_TOKEN``), exactly as the HTTP API does, so the same rules apply to both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from confide.access.model import ProjectApplication, Role
from confide.access.protection import protection_from
from confide.access.service import Access
from confide.cli.options import TokenOption
from confide.cli.output import HomeOption, JsonOption, console, handle_errors, report
from confide.common.errors import InvalidInput
from confide.common.home import Home

access_app = typer.Typer(help="Organisations, people, roles and projects (who may do what).")
org_app = typer.Typer(help="Register organisations.")
person_app = typer.Typer(help="Add people to organisations with roles.")
client_app = typer.Typer(help="API clients (client id and secret) for programs.")
project_app = typer.Typer(help="Apply for, submit, decide and inspect projects.")
access_app.add_typer(org_app, name="org")
access_app.add_typer(person_app, name="person")
access_app.add_typer(client_app, name="client")
access_app.add_typer(project_app, name="project")

ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (published with the decision; name nobody).")
]


@contextmanager
def _open(home: Any) -> Iterator[Access]:
    """Access from the composition: its decisions reach the ledger before the command ends."""
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        yield parties.access


def _date(raw: str, what: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{what} must be a date like 2025-03-31.") from None


def _datasets(specs: list[str]) -> dict[str, list[str]]:
    """``events:code,date`` (repeatable) → ``{"events": ["code", "date"]}``."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        table, sep, columns = spec.partition(":")
        if not sep or not table.strip() or not columns.strip():
            raise InvalidInput(
                f"--dataset {spec[:60]!r} is not in the form table:column,column.",
                hint="For example --dataset events:code,date or --dataset patients:*",
            )
        out.setdefault(table.strip(), []).extend(c.strip() for c in columns.split(","))
    return out


def _show_project(project: dict[str, Any]) -> None:
    console.print(f"[bold]{project['slug']}[/] ({project['status']}) — {project['title']}")
    console.print(
        f"  {project['organisation_name']}: {project['purpose']} "
        f"({project['recipient_kind']} recipient), legal basis {project['legal_basis']}"
    )
    console.print(
        f"  dates {project['window_start']} to {project['window_end']}; "
        f"expires {project['expires_on']}"
    )
    for table, columns in project["datasets"].items():
        console.print(f"  {table}: {', '.join(columns)}")
    for item in project.get("history") or []:
        console.print(f"  {item['at'][:19]} {item['kind']} ({item['actor_role']})")


# --- operators -----------------------------------------------------------------------------


@org_app.command("create")
@handle_errors
def org_create(
    name: Annotated[str, typer.Argument(help="The organisation's name.")],
    kind: Annotated[str, typer.Option("--kind", help="nhs, academic, charity or commercial.")],
    slug: Annotated[str | None, typer.Option("--slug", help="Short name (default: from name).")] = (
        None
    ),
    approving_body: Annotated[
        bool, typer.Option("--approving-body", help="It decides other organisations' projects.")
    ] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an organisation."""
    with _open(home) as access:
        org = access.create_organisation(name, kind, slug=slug, approving_body=approving_body)
    report(
        org.as_dict(),
        as_json,
        lambda registered: console.print(f"Registered {registered['slug']}."),
    )


@org_app.command("list")
@handle_errors
def org_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List registered organisations."""
    with _open(home) as access:
        orgs = [organisation.as_dict() for organisation in access.organisations()]

    def human(listing: dict[str, Any]) -> None:
        table = Table("slug", "name", "kind", "approving body")
        for organisation in listing["organisations"]:
            table.add_row(
                organisation["slug"],
                organisation["name"],
                organisation["kind"],
                "yes" if organisation["approving_body"] else "",
            )
        console.print(table)

    report({"organisations": orgs}, as_json, human)


@person_app.command("add")
@handle_errors
def person_add(
    org: Annotated[str, typer.Option("--org", help="The organisation's short name.")],
    name: Annotated[str, typer.Option("--name", help="The person's name.")],
    email: Annotated[str, typer.Option("--email", help="The person's email address.")],
    role: Annotated[
        list[str], typer.Option("--role", help=f"Repeat for several: {', '.join(Role)}.")
    ],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a person to an organisation with roles (an existing person keeps other roles)."""
    with _open(home) as access:
        person = access.add_person(org, name, email, role)
    result = {
        "organisation": org,
        "roles": sorted(role.value for role in person.roles[org.lower()]),
    }
    report(
        result, as_json, lambda held: console.print(f"Roles in {org}: {', '.join(held['roles'])}.")
    )


@client_app.command("create")
@handle_errors
def client_create(
    org: Annotated[str, typer.Option("--org", help="The organisation the client acts for.")],
    email: Annotated[str, typer.Option("--email", help="The person the client acts as.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API client; its secret is shown now and never again."""
    with _open(home) as access:
        client_id, secret = access.create_client(org, email)

    def human(client: dict[str, Any]) -> None:
        console.print(f"client id:     {client['client_id']}")
        console.print(f"client secret: {client['client_secret']}")
        console.print("[yellow]Keep the secret safe: it is not stored and cannot be shown again.")

    report({"client_id": client_id, "client_secret": secret}, as_json, human)


@client_app.command("revoke")
@handle_errors
def client_revoke(
    client_id: Annotated[str, typer.Argument(help="The client to stop.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a client: its secret and tokens stop working at once."""
    with _open(home) as access:
        access.revoke_client(client_id)
    report(
        {"revoked": client_id}, as_json, lambda done: console.print(f"Revoked {done['revoked']}.")
    )


@access_app.command("token")
@handle_errors
def token_cmd(
    client_id: Annotated[str, typer.Option("--client-id", envvar="CONFIDE_CLIENT_ID")],
    client_secret: Annotated[
        str,
        typer.Option(
            "--client-secret", envvar="CONFIDE_CLIENT_SECRET", prompt=True, hide_input=True
        ),
    ],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Get a bearer token for a client (valid for an hour)."""
    with _open(home) as access:
        issued = access.issue_token(client_id, client_secret)
    report(issued.as_oauth(), as_json, lambda oauth: console.print(oauth["access_token"]))


# --- projects ------------------------------------------------------------------------------


@project_app.command("apply")
@handle_errors
def project_apply(
    title: Annotated[str, typer.Option("--title", help="What the project is called.")],
    purpose: Annotated[str, typer.Option("--purpose", help="research, planning, ...")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="public_task, consent, ...")],
    dataset: Annotated[
        list[str], typer.Option("--dataset", help="table:column,column (repeatable; * = all).")
    ],
    window_start: Annotated[str, typer.Option("--from", help="First date of data (YYYY-MM-DD).")],
    window_end: Annotated[str, typer.Option("--to", help="Last date of data (YYYY-MM-DD).")],
    expires: Annotated[str, typer.Option("--expires", help="When approval ends (YYYY-MM-DD).")],
    token: TokenOption,
    slug: Annotated[str | None, typer.Option("--slug", help="Short name (default: title).")] = None,
    recipient_kind: Annotated[str | None, typer.Option("--recipient-kind")] = None,
    summary: Annotated[str, typer.Option("--summary", help="Lay summary (published).")] = "",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply for a project for your organisation (creates a draft)."""
    application = ProjectApplication(
        title=title,
        purpose=purpose,
        legal_basis=legal_basis,
        datasets=_datasets(dataset),
        window_start=_date(window_start, "--from"),
        window_end=_date(window_end, "--to"),
        expires_on=_date(expires, "--expires"),
        slug=slug,
        recipient_kind=recipient_kind,
        summary=summary,
    )
    with _open(home) as access:
        project = access.apply(access.authenticate(token), application)
    report(project.as_dict(), as_json, _show_project)


def _act(home: Any, token: str, action: str, slug: str, reason: str | None = None) -> dict:
    with _open(home) as access:
        who = access.authenticate(token)
        method = getattr(access, action)
        project = method(who, slug) if reason is None else method(who, slug, reason)
        return project.as_dict()


@project_app.command("submit")
@handle_errors
def project_submit(
    slug: str, token: TokenOption, home: HomeOption = None, as_json: JsonOption = False
) -> None:
    """Submit a draft to the approving body."""
    report(_act(home, token, "submit", slug), as_json, _show_project)


def _decision(action: str, summary: str) -> None:
    """Register ``confide access project <action> SLUG --reason …`` (the decisions all share
    one shape: who may take them is the access service's business, not the CLI's)."""

    @handle_errors
    def command(
        slug: str,
        token: TokenOption,
        reason: ReasonOption,
        home: HomeOption = None,
        as_json: JsonOption = False,
    ) -> None:
        report(_act(home, token, action, slug, reason), as_json, _show_project)

    command.__doc__ = summary
    project_app.command(action)(command)


@project_app.command("approve")
@handle_errors
def project_approve(
    slug: str,
    token: TokenOption,
    reason: ReasonOption,
    protection: Annotated[
        str,
        typer.Option(
            "--protection",
            help="How the project's outputs are protected: sdc (disclosure control) or dp "
            "(differential privacy). Researchers cannot change it.",
        ),
    ] = "sdc",
    rules: Annotated[
        str, typer.Option("--rules", help="sdc: the rule set, acro or opensafely.")
    ] = "acro",
    epsilon_total: Annotated[
        float | None,
        typer.Option("--epsilon-total", help="dp: the project's whole privacy budget."),
    ] = None,
    contributions: Annotated[
        int,
        typer.Option("--contributions", help="dp: cells one person may count in, per query."),
    ] = 1,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a submitted application (approvers of an approving body), setting how its
    outputs are protected."""
    chosen = protection_from(
        {
            "mode": protection,
            "rules": rules,
            "epsilon_total": epsilon_total,
            "contributions": contributions,
        }
        if protection.strip().lower() == "dp"
        else {"mode": protection, "rules": rules}
    )
    with _open(home) as access:
        project = access.approve(access.authenticate(token), slug, reason, chosen)
    report(project.as_dict(), as_json, _show_project)


for _action, _summary in (
    ("reject", "Reject a submitted application."),
    ("suspend", "Suspend an approved project at once (administrators of an approving body)."),
    ("reinstate", "Reinstate a suspended project."),
):
    _decision(_action, _summary)


@project_app.command("list")
@handle_errors
def project_list(token: TokenOption, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the projects you may see."""
    with _open(home) as access:
        projects = [project.as_dict() for project in access.projects(access.authenticate(token))]

    def human(listing: dict[str, Any]) -> None:
        table = Table("project", "organisation", "purpose", "status", "expires")
        for project in listing["projects"]:
            table.add_row(
                project["slug"],
                project["organisation"],
                project["purpose"],
                project["status"],
                project["expires_on"],
            )
        console.print(table)

    report({"projects": projects}, as_json, human)


@project_app.command("show")
@handle_errors
def project_show(
    slug: str, token: TokenOption, home: HomeOption = None, as_json: JsonOption = False
) -> None:
    """Show a project and its history."""
    with _open(home) as access:
        who = access.authenticate(token)
        result = access.project(who, slug).as_dict()
        result["history"] = access.history(who, slug)
    report(result, as_json, _show_project)


def mount(app: typer.Typer) -> None:
    """Attach this party's commands to the root app."""
    app.add_typer(access_app, name="access")
