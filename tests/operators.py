"""An operator (and a person without the role) in a home's access party, for CLI tests."""

from __future__ import annotations

from pathlib import Path

from confide.access.model import Role
from confide.access.service import Access
from confide.common.home import Home

OPERATOR = "operator@service.example"
NOT_OPERATOR = "planner@service.example"
ORG = "service-desk"


def add_operator(root: Path) -> list[str]:
    """The CLI options that name the operator (created once per home)."""
    with Access.open(Home.at(root)) as access:
        try:
            access.organisation(ORG)
        except Exception:  # not there yet
            access.create_organisation("Service desk", "nhs", slug=ORG)
            access.add_person(ORG, "An Operator", OPERATOR, [Role.OPERATOR])
            access.add_person(ORG, "A Planner", NOT_OPERATOR, [Role.APPLICANT])
    return ["--operator", OPERATOR, "--organisation", ORG, "--reason", "subject access request"]
