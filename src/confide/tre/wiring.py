"""Composition helpers for the TRE: the embedded deployment passes in the party objects.

Kept here (not in the parties) so the TRE depends only on the interfaces it uses; a networked
deployment passes clients with the same methods. ``confide.embedded`` calls these with the
in-process parties.
"""

from __future__ import annotations

from typing import Any

from confide.hub.records import RecordStore
from confide.rollout.gate import release_stopped
from confide.tre.exclusions import RegistryExclusions
from confide.tre.review import ReviewQueue
from confide.tre.service import QueryService
from confide.tre.store import TreStore


def query_service(
    home: Any,
    *,
    access: Any,
    registry: Any,
    pseudonymiser: Any,
    records: RecordStore,
    ledger: Any,
    store: TreStore | None = None,
    policy_preset: str = "strict",
    **options: Any,
) -> QueryService:
    """A query service over the given parties (``store`` defaults to the home's TRE store)."""
    return QueryService(
        access,
        records,
        RegistryExclusions(registry, pseudonymiser, policy_preset),
        ledger,
        store or TreStore.open(home),
        home,
        **options,
    )


def review_queue(service: QueryService) -> ReviewQueue:
    """The two-checker review queue over the same store, ledger and budgets."""
    return ReviewQueue(
        service.store,
        service.ledger,
        service.access.organisations_of,
        releases_stopped=lambda: release_stopped(
            service.home, service.records.catalog()["sources"]
        ),
    )
