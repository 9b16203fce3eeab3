"""Logging choice changes without identifying anyone: the choices registry's ledger listener.

Wiring (the embedded deployment does this)::

    registry.listeners.append(ChoiceLogger(ledger, SaltStore.open(home)))

After each committed change the listener appends one ``choice_changed`` entry whose body is the
person's commitment for that change (:func:`confide.ledger.commitments.commitment_for`, keyed
by their secret from :class:`~confide.usage.salts.SaltStore`), the choices turned on and off and
the channel. Never the NHS number, a pseudonym, the actor or proxy details. Bulk loads that
record with ``notify=False`` log their events afterwards with :func:`log_choice_events`, which
appends them all in one ledger transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from confide.choices.model import ChoiceEvent
from confide.ledger.commitments import commitment_for, erasure_commitment
from confide.usage.salts import SaltStore


class LedgerWriter(Protocol):
    def append_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[int]: ...


def choice_changed_body(event: ChoiceEvent, person_secret: bytes) -> dict[str, Any]:
    """The public body of the ``choice_changed`` entry for one change."""
    return {
        "commitment": commitment_for(person_secret, event.change_id, "choice_changed"),
        "set": sorted(c.value for c, on in event.changes.items() if on),
        "cleared": sorted(c.value for c, on in event.changes.items() if not on),
        "channel": event.channel.value,
    }


def erasure_body(person_secret: bytes, change_id: str, stores: Sequence[str]) -> dict[str, Any]:
    """The public body of the ``erasure`` entry that the ``share_nothing`` change ``change_id``
    caused (for the party carrying out erasures, with the secret from the choices party).

    It says where the person was erased, never how many rows they had: a row count is a fact
    about the person, and the entry is public."""
    return {
        "commitment": erasure_commitment(person_secret, change_id),
        "stores": sorted(stores),
    }


def log_choice_events(
    events: Sequence[ChoiceEvent], ledger: LedgerWriter, salts: SaltStore
) -> list[int]:
    """Append one ``choice_changed`` entry per event, all in one transaction; their indices."""
    if not events:
        return []
    secrets = salts.secrets_for(e.nhs_number for e in events)
    return ledger.append_many(
        [("choice_changed", choice_changed_body(e, secrets[e.nhs_number])) for e in events]
    )


class ChoiceLogger:
    """A choices-registry listener: every change it hears of goes into the ledger."""

    def __init__(self, ledger: LedgerWriter, salts: SaltStore) -> None:
        self.ledger = ledger
        self.salts = salts

    def __call__(self, event: ChoiceEvent) -> None:
        log_choice_events([event], self.ledger, self.salts)
