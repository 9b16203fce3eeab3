"""Events between parties: typed, written to the sender's outbox with the change, relayed.

``confide.events.types`` names every event one party's change means for another;
``confide.events.outbox`` is the table each sending party keeps them in (written in the same
transaction as the change); ``confide.events.relay`` delivers them at least once, with retries
and backoff, to receivers that ignore what they have already seen.
"""

from confide.events.types import (
    ChoiceChanged,
    ErasureRequested,
    Event,
    ProjectApplied,
    ProjectDecided,
    SubmissionIngested,
    Type1ObjectionSeen,
    event_from_row,
)

__all__ = [
    "ChoiceChanged",
    "ErasureRequested",
    "Event",
    "ProjectApplied",
    "ProjectDecided",
    "SubmissionIngested",
    "Type1ObjectionSeen",
    "event_from_row",
]
