"""Demo organisations, people and approved projects, so anyone can try queries at once.

``seed_demo`` is safe to run again: organisations, people and projects are created only when
missing; API clients are new each time, because a secret can be shown only once.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from confide.access.model import ProjectApplication, Role
from confide.access.protection import OutputProtection, ProtectionMode
from confide.access.service import Access
from confide.common.errors import NotFound

APPROVING_BODY = ("demo-dac", "Demo Data Access Committee", "nhs")
ORGANISATIONS = (
    ("demo-university", "Demo University", "academic"),
    ("demo-icb", "Demo Integrated Care Board", "nhs"),
    ("demo-pharma", "Demo Pharmaceuticals Ltd", "commercial"),
)

# key → (organisation, name, email, roles). Names and addresses are invented.
PEOPLE: dict[str, tuple[str, str, str, tuple[Role, ...]]] = {
    "approver": ("demo-dac", "Demo Approver", "approver@dac.example", (Role.APPROVER,)),
    "output_checker_1": (
        "demo-dac",
        "Demo Output Checker One",
        "checker1@dac.example",
        (Role.OUTPUT_CHECKER,),
    ),
    "output_checker_2": (
        "demo-dac",
        "Demo Output Checker Two",
        "checker2@dac.example",
        (Role.OUTPUT_CHECKER,),
    ),
    "administrator": ("demo-dac", "Demo Administrator", "admin@dac.example", (Role.ADMINISTRATOR,)),
    "operator": ("demo-dac", "Demo Operator", "operator@dac.example", (Role.OPERATOR,)),
    "researcher": (
        "demo-university",
        "Demo Researcher",
        "researcher@university.example",
        (Role.APPLICANT,),
    ),
    "planner": ("demo-icb", "Demo Planner", "planner@icb.example", (Role.APPLICANT,)),
    "commercial": (
        "demo-pharma",
        "Demo Commercial Scientist",
        "scientist@pharma.example",
        (Role.APPLICANT,),
    ),
}

# slug → (applicant key, title, purpose, legal basis, datasets, summary)
PROJECTS: dict[str, tuple[str, str, str, str, dict[str, list[str]], str]] = {
    "demo-research": (
        "researcher",
        "Demo: long-term outcomes of type 2 diabetes",
        "research",
        "public_task",
        {
            "patients": ["birth_year", "sex", "area"],
            "events": ["kind", "system", "code", "date", "value", "unit"],
            "medications": ["system", "code", "date", "quantity", "quantity_unit"],
            "deaths": ["date_of_death"],
        },
        "Academic study of how diagnoses, tests and treatments relate to later outcomes.",
    ),
    "demo-planning": (
        "planner",
        "Demo: hospital capacity planning",
        "planning",
        "public_task",
        {
            "patients": ["birth_year", "sex", "area"],
            "registrations": ["practice", "start_date", "end_date"],
            "events": ["kind", "system", "code", "date"],
            "hospital_episodes": [
                "admission_date",
                "discharge_date",
                "admission_method",
                "primary_diagnosis",
            ],
        },
        "NHS planning of admissions and practice workload by age band, sex and area.",
    ),
    "demo-commercial": (
        "commercial",
        "Demo: real-world use of a medicine",
        "research",
        "legitimate_interests",
        {
            "patients": ["birth_year", "sex"],
            "events": ["system", "code", "date"],
            "medications": ["system", "code", "date", "quantity", "quantity_unit"],
        },
        "Commercial research into prescribing patterns after diagnosis.",
    ),
}

WINDOW_START = date(2000, 1, 1)


# How each demo project's outputs are protected: the three kinds an approver can choose.
PROTECTIONS: dict[str, OutputProtection] = {
    "demo-research": OutputProtection(ProtectionMode.SDC, "acro"),
    "demo-planning": OutputProtection(ProtectionMode.SDC, "opensafely"),
    "demo-commercial": OutputProtection(ProtectionMode.DP, "acro", epsilon_total=3.0),
}


def _ensure_organisations(access: Access) -> None:
    wanted = [(*APPROVING_BODY, True), *((*organisation, False) for organisation in ORGANISATIONS)]
    for slug, name, kind, approving in wanted:
        try:
            access.organisation(slug)
        except NotFound:
            access.create_organisation(name, kind, slug=slug, approving_body=approving)


def _ensure_project(access: Access, slug: str) -> str:
    applicant, title, purpose, basis, datasets, summary = PROJECTS[slug]
    org, _, email, _ = PEOPLE[applicant]
    who = access.principal_for(org, email)
    try:
        return access.project(who, slug).status.value
    except NotFound:
        pass
    today = access.clock().date()
    access.apply(
        who,
        ProjectApplication(
            slug=slug,
            title=title,
            purpose=purpose,
            legal_basis=basis,
            datasets=datasets,
            window_start=WINDOW_START,
            window_end=today,
            expires_on=today + timedelta(days=365),
            summary=summary,
        ),
    )
    access.submit(who, slug)
    approver_org, _, approver_email, _ = PEOPLE["approver"]
    approver = access.principal_for(approver_org, approver_email)
    return access.approve(
        approver, slug, "Demo project: approved for trying Confide.", PROTECTIONS[slug]
    ).status.value


def seed_demo(access: Access, *, token_lifetime: timedelta | None = None) -> dict[str, Any]:
    """Set up the demo approving body, organisations, people and approved projects.

    Returns each demo person's new client credentials and a bearer token, and each project's
    status, for the demo to print.
    """
    _ensure_organisations(access)
    for org, name, email, roles in PEOPLE.values():
        access.add_person(org, name, email, roles)
    projects = {
        slug: {
            "organisation": PEOPLE[spec[0]][0],
            "status": _ensure_project(access, slug),
            "credentials": spec[0],
        }
        for slug, spec in PROJECTS.items()
    }
    creds: dict[str, dict[str, Any]] = {}
    for key, (org, _, email, roles) in PEOPLE.items():
        client_id, secret = access.create_client(org, email)
        issued = access.issue_token(client_id, secret, lifetime=token_lifetime)
        creds[key] = {
            "organisation": org,
            "roles": [role.value for role in roles],
            "client_id": client_id,
            "client_secret": secret,
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
        }
    return {
        "organisations": [organisation.as_dict() for organisation in access.organisations()],
        "credentials": creds,
        "projects": projects,
    }
