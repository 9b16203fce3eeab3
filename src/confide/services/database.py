"""``confide up --database-url``: each party's service connects as its own PostgreSQL role.

When the URL's user may create roles, every service gets a role of its own (``confide_<party>``,
after the schema prefix) with rights on its own schemas only (:data:`SCHEMAS`), its password
kept in the party's own folder (owner-only). The schemas are made here, each owned by the
party that keeps it; the web app, a front end, may use the identity checks' and staff
sign-ins' stores (the choices and access schemas) and the roll-out's. A user who may not
create roles keeps the shared connection, as before.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

from confide.common import settings
from confide.common.home import Home

# The schemas each service uses; the first party listed for a schema owns it.
SCHEMAS: dict[str, tuple[str, ...]] = {
    "ledger": ("ledger",),
    "choices": ("choices",),
    "pseudonymiser": (),
    "hub": ("hub", "tre", "rollout", "notices"),
    "access": ("access",),
    "web": ("choices", "access", "rollout"),
}
PASSWORD_FILE = "database.password"


def may_create_roles(conn: Connection) -> bool:
    found = conn.execute(
        text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    ).scalar()
    return bool(found)


def role_urls(url: str, home: Home) -> dict[str, str] | None:
    """Each service's database URL, connecting as its own role (made or updated here, with
    rights on its own schemas only); None when the URL's user may not create roles."""
    prefix = settings.value(settings.DATABASE_SCHEMA_PREFIX.name) or ""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if not may_create_roles(conn):
                return None
            roles = {party: f"{prefix}confide_{party}" for party in SCHEMAS}
            passwords = {party: _password(home.party(party)) for party in SCHEMAS}
            for party, role in roles.items():
                exists = conn.execute(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
                ).first()
                verb = "ALTER" if exists else "CREATE"
                # The password is hex (no quoting needed); DDL takes no bound parameters.
                conn.execute(text(f"{verb} ROLE \"{role}\" LOGIN PASSWORD '{passwords[party]}'"))
            users: dict[str, list[str]] = {}
            for party, schemas in SCHEMAS.items():
                for schema in schemas:
                    users.setdefault(schema, []).append(roles[party])
            for name, (owner, *others) in users.items():
                _own(conn, f"{prefix}{name}", owner, others)
    finally:
        engine.dispose()
    base = make_url(url)
    return {
        party: base.set(username=role, password=passwords[party]).render_as_string(
            hide_password=False
        )
        for party, role in roles.items()
    }


def _own(conn: Connection, schema: str, owner: str, others: list[str]) -> None:
    """``schema`` made if missing and owned by ``owner``; ``others`` may use its tables (those
    there now, and those either makes later); nobody else may (PUBLIC has no right on it)."""
    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    conn.execute(text(f'ALTER SCHEMA "{schema}" OWNER TO "{owner}"'))
    conn.execute(text(f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC'))
    for role in (owner, *others):
        conn.execute(text(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}"'))
        for kind in ("TABLES", "SEQUENCES"):
            conn.execute(text(f'GRANT ALL ON ALL {kind} IN SCHEMA "{schema}" TO "{role}"'))
        for maker in (owner, *others):
            if maker != role:
                for kind in ("TABLES", "SEQUENCES"):
                    conn.execute(
                        text(
                            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{maker}" IN SCHEMA "{schema}" '
                            f'GRANT ALL ON {kind} TO "{role}"'
                        )
                    )


def _password(folder: Path) -> str:
    """The party's database password, made once and kept in its own folder (owner-only)."""
    path = folder / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_hex(24)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password
