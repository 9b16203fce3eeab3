"""Who is calling: API clients, the bearer tokens they are issued, and the principal behind one.

Kept on its own because it is the part an attacker talks to first: a wrong secret, an unknown
client and a revoked client must look the same, secrets and tokens are only ever stored hashed,
and a revoked client's tokens stop working at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, select, update

from confide.access import credentials
from confide.access import store as tables
from confide.access.context import Context
from confide.access.directory import Directory, roles_held
from confide.access.errors import BAD_CREDENTIALS, BAD_TOKEN, Unauthenticated
from confide.access.model import Principal
from confide.common.clock import as_utc
from confide.common.errors import InvalidInput, NotFound

DEFAULT_TOKEN_LIFETIME = timedelta(hours=1)
MAX_TOKEN_LIFETIME = timedelta(hours=24)


class ClientCredentials(NamedTuple):
    """A new API client's id and its secret (the secret is shown this once)."""

    client_id: str
    secret: str


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_at: datetime
    expires_in: int

    def as_oauth(self) -> dict[str, Any]:
        """The RFC 6749 section 5.1 response body."""
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


class Tokens:
    """API clients and bearer tokens, and the principal a token stands for."""

    def __init__(
        self,
        context: Context,
        directory: Directory,
        *,
        lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        self.context = context
        self.directory = directory
        self.lifetime = lifetime

    def create_client(self, org: str, email: str) -> ClientCredentials:
        """A new API client acting for one person in one organisation.

        The secret is shown this once; only its scrypt hash is kept.
        """
        organisation = self.directory.organisation(org)
        person = self.directory.person(email)
        if organisation.slug not in person.roles:
            raise InvalidInput(
                f"That person holds no role in {organisation.slug}.",
                hint="Add them to the organisation first (confide access person add).",
            )
        client_id, secret = credentials.new_client_id(), credentials.new_secret()
        with self.context.engine.begin() as conn:
            conn.execute(
                insert(tables.api_clients).values(
                    client_id=client_id,
                    secret_hash=credentials.hash_secret(secret),
                    organisation_id=organisation.id,
                    person_id=person.id,
                    created_at=self.context.now(),
                )
            )
        return ClientCredentials(client_id, secret)

    def revoke_client(self, client_id: str) -> None:
        """Stop a client: its secret and every token it holds stop working at once."""
        clients = tables.api_clients
        with self.context.engine.begin() as conn:
            done = conn.execute(
                update(clients)
                .where(clients.c.client_id == client_id, clients.c.revoked_at.is_(None))
                .values(revoked_at=self.context.now())
            )
            conn.execute(delete(tables.tokens).where(tables.tokens.c.client_id == client_id))
        if done.rowcount == 0:
            raise NotFound("No active client with that id.")

    def issue_token(
        self, client_id: str, secret: str, *, lifetime: timedelta | None = None
    ) -> IssuedToken:
        """OAuth2 client credentials: a bearer token for a valid client id and secret.

        A wrong secret, an unknown client and a revoked client get the same answer after the
        same work, so the answer does not tell anyone which clients exist.
        """
        life = lifetime or self.lifetime
        if not (timedelta(seconds=1) <= life <= MAX_TOKEN_LIFETIME):
            raise InvalidInput("A token may last from one second to 24 hours.")
        with self.context.engine.connect() as conn:
            client = conn.execute(
                select(tables.api_clients).where(
                    tables.api_clients.c.client_id == str(client_id)[:40]
                )
            ).first()
        if client is None:
            credentials.burn_time(str(secret))
            raise Unauthenticated(BAD_CREDENTIALS)
        good = credentials.verify_secret(str(secret), client.secret_hash)
        if not good or client.revoked_at is not None:
            raise Unauthenticated(BAD_CREDENTIALS)
        token = credentials.new_token()
        now = self.context.now()
        expires = now + life
        with self.context.engine.begin() as conn:
            conn.execute(delete(tables.tokens).where(tables.tokens.c.expires_at < now))
            conn.execute(
                insert(tables.tokens).values(
                    token_hash=credentials.token_digest(token),
                    client_id=client.client_id,
                    issued_at=now,
                    expires_at=expires,
                )
            )
        return IssuedToken(token, expires, int(life.total_seconds()))

    def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token, with the roles they hold now."""
        if not token or len(token) > 200:
            raise Unauthenticated(BAD_TOKEN)
        clients, organisations = tables.api_clients, tables.organisations
        with self.context.engine.connect() as conn:
            row = conn.execute(
                select(
                    tables.tokens.c.expires_at,
                    clients.c.client_id,
                    clients.c.person_id,
                    clients.c.revoked_at,
                    organisations.c.id.label("organisation_id"),
                    organisations.c.slug,
                    organisations.c.approving_body,
                )
                .join(clients, clients.c.client_id == tables.tokens.c.client_id)
                .join(organisations, organisations.c.id == clients.c.organisation_id)
                .where(tables.tokens.c.token_hash == credentials.token_digest(token))
            ).first()
            if (
                row is None
                or row.revoked_at is not None
                or as_utc(row.expires_at) <= self.context.now()
            ):
                raise Unauthenticated(BAD_TOKEN)
            roles = roles_held(conn, row.person_id, row.organisation_id)
        return Principal(
            person_id=row.person_id,
            organisation_id=row.organisation_id,
            organisation=row.slug,
            roles=frozenset(roles),
            approving_body=bool(row.approving_body),
            client_id=row.client_id,
        )

    def principal_for(self, org: str, email: str) -> Principal:
        """The principal of a person acting for an organisation, for local operator tools
        (the CLI and the demo) that already hold the store; network callers use tokens."""
        organisation = self.directory.organisation(org)
        person = self.directory.person(email)
        return Principal(
            person_id=person.id,
            organisation_id=organisation.id,
            organisation=organisation.slug,
            roles=person.roles.get(organisation.slug, frozenset()),
            approving_body=organisation.approving_body,
        )
