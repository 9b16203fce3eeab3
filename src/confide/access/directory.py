"""Who is who: organisations, the people in them and the roles they hold there.

Kept apart from tokens and projects because everything else asks it the same two questions
(which organisation is this, which roles does this person hold there now), and roles must be
read fresh at every request so that taking one away works at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from confide.access import rules
from confide.access import store as tables
from confide.access.context import Context, Notice, new_id
from confide.access.errors import Conflict
from confide.access.model import (
    Organisation,
    Person,
    RecipientKind,
    Role,
    parse_recipient_kind,
    parse_role,
)
from confide.common.clock import as_utc
from confide.common.errors import InvalidInput, NotFound

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def organisation_from_row(row: Any) -> Organisation:
    """An organisation from a row of the ``organisations`` table."""
    return Organisation(
        id=row.id,
        slug=row.slug,
        name=row.name,
        kind=RecipientKind(row.kind),
        approving_body=bool(row.approving_body),
        created_at=as_utc(row.created_at),
    )


def roles_held(conn: Connection, person_id: str, organisation_id: str) -> set[Role]:
    """The roles a person holds in one organisation, as stored now."""
    rows = conn.execute(
        select(tables.memberships.c.role).where(
            tables.memberships.c.person_id == person_id,
            tables.memberships.c.organisation_id == organisation_id,
        )
    ).all()
    return {Role(row.role) for row in rows}


def _role_hint() -> str:
    return "Roles: " + ", ".join(role.value for role in Role) + "."


class Directory:
    """Organisations, people and roles in the access party's store."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def create_organisation(
        self,
        name: str,
        kind: RecipientKind | str,
        *,
        slug: str | None = None,
        approving_body: bool = False,
    ) -> Organisation:
        """Register an organisation; an approving body decides other organisations' projects."""
        clean = " ".join(str(name).split())
        if not (2 <= len(clean) <= 200):
            raise InvalidInput("An organisation name must be 2 to 200 characters long.")
        org = Organisation(
            id=new_id(),
            slug=rules.checked_slug(slug or rules.slug_from_title(clean)),
            name=clean,
            kind=parse_recipient_kind(kind),
            approving_body=bool(approving_body),
            created_at=self.context.now(),
        )
        try:
            with self.context.engine.begin() as conn:
                conn.execute(
                    insert(tables.organisations).values(
                        id=org.id,
                        slug=org.slug,
                        name=org.name,
                        kind=org.kind.value,
                        approving_body=org.approving_body,
                        created_at=org.created_at,
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"An organisation called {org.slug!r} is already registered.",
                hint="Choose another short name with --slug.",
            ) from None
        self.context.tell(
            Notice("organisation_registered", {**org.as_dict(), "at": org.created_at.isoformat()})
        )
        return org

    def organisation(self, slug: str) -> Organisation:
        with self.context.engine.connect() as conn:
            row = conn.execute(
                select(tables.organisations).where(
                    tables.organisations.c.slug == slug.strip().lower()
                )
            ).first()
        if row is None:
            raise NotFound(f"No organisation called {slug[:60]!r} is registered.")
        return organisation_from_row(row)

    def organisations(self) -> list[Organisation]:
        with self.context.engine.connect() as conn:
            rows = conn.execute(
                select(tables.organisations).order_by(tables.organisations.c.slug)
            ).all()
        return [organisation_from_row(row) for row in rows]

    def add_person(self, org: str, name: str, email: str, roles: Iterable[Role | str]) -> Person:
        """Add a person (or an existing person, by email) to an organisation with roles."""
        organisation = self.organisation(org)
        wanted = {parse_role(role) for role in roles}
        if not wanted:
            raise InvalidInput("Give the person at least one role.", hint=_role_hint())
        if (Role.APPROVER in wanted or Role.ADMINISTRATOR in wanted) and not (
            organisation.approving_body
        ):
            raise InvalidInput(
                "Approvers and administrators belong to an approving body, and "
                f"{organisation.slug} is not one.",
                hint="Give this person the applicant or output_checker role here.",
            )
        address = str(email).strip().lower()
        if not _EMAIL.match(address) or len(address) > 254:
            raise InvalidInput("That is not a usable email address.")
        clean = " ".join(str(name).split())
        if not (1 <= len(clean) <= 200):
            raise InvalidInput("A name must be 1 to 200 characters long.")
        now = self.context.now()
        with self.context.engine.begin() as conn:
            row = conn.execute(
                select(tables.people).where(tables.people.c.email == address)
            ).first()
            person_id = row.id if row else new_id()
            if row is None:
                conn.execute(
                    insert(tables.people).values(
                        id=person_id, name=clean, email=address, created_at=now
                    )
                )
            held = roles_held(conn, person_id, organisation.id)
            for role in sorted(wanted - held):
                conn.execute(
                    insert(tables.memberships).values(
                        person_id=person_id,
                        organisation_id=organisation.id,
                        role=role.value,
                        granted_at=now,
                    )
                )
            person = self._person(conn, person_id)
        self.context.tell(
            Notice(
                "roles_granted",
                {
                    "organisation": organisation.slug,
                    "roles": sorted(role.value for role in wanted),
                    "at": now.isoformat(),
                },
            )
        )
        return person

    def revoke_role(self, org: str, email: str, role: Role | str) -> None:
        """Take a role away; it stops working at the holder's very next request."""
        organisation = self.organisation(org)
        person = self.person(email)
        with self.context.engine.begin() as conn:
            conn.execute(
                delete(tables.memberships).where(
                    tables.memberships.c.person_id == person.id,
                    tables.memberships.c.organisation_id == organisation.id,
                    tables.memberships.c.role == parse_role(role).value,
                )
            )
        self.context.tell(
            Notice(
                "role_revoked",
                {"organisation": organisation.slug, "roles": [parse_role(role).value]},
            )
        )

    def person(self, email: str) -> Person:
        with self.context.engine.connect() as conn:
            row = conn.execute(
                select(tables.people.c.id).where(
                    tables.people.c.email == str(email).strip().lower()
                )
            ).first()
            if row is None:
                raise NotFound("No person with that email address is registered.")
            return self._person(conn, row.id)

    def organisations_of(self, person_id: str) -> frozenset[str]:
        """The ids of every organisation the person holds any role in (conflict checks)."""
        with self.context.engine.connect() as conn:
            rows = conn.execute(
                select(tables.memberships.c.organisation_id)
                .where(tables.memberships.c.person_id == person_id)
                .distinct()
            ).all()
        return frozenset(row.organisation_id for row in rows)

    @staticmethod
    def _person(conn: Connection, person_id: str) -> Person:
        row = conn.execute(select(tables.people).where(tables.people.c.id == person_id)).one()
        held: dict[str, set[Role]] = {}
        for membership in conn.execute(
            select(tables.organisations.c.slug, tables.memberships.c.role)
            .join(
                tables.organisations,
                tables.organisations.c.id == tables.memberships.c.organisation_id,
            )
            .where(tables.memberships.c.person_id == person_id)
        ):
            held.setdefault(membership.slug, set()).add(Role(membership.role))
        return Person(
            id=row.id,
            name=row.name,
            email=row.email,
            roles={slug: frozenset(roles) for slug, roles in held.items()},
        )
