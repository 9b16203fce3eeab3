"""The options every command that looks a person up takes: who is asking, for which
organisation, and why (checked and logged by ``confide.access.lookups``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confide.common.home import Home

OperatorEmail = Annotated[
    str, typer.Option("--operator", help="Your email: you need the operator role.")
]
OperatorOrg = Annotated[
    str, typer.Option("--organisation", help="The organisation you act for (its slug).")
]
LookupReason = Annotated[
    str,
    typer.Option(
        "--reason", help="Why you look this person up (published in the log; name nobody)."
    ),
]


def logged_lookup(home: Path | None, *, what: str, email: str, org: str, reason: str) -> None:
    """Refuse unless the operator role is held; log the look-up before anything is shown."""
    from confide.access.lookups import record_lookup
    from confide.composition import compose

    with compose(Home.at(home)) as parties:
        record_lookup(
            parties.access, parties.ledger, organisation=org, email=email, what=what, reason=reason
        )
