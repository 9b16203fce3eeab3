"""Per-person commitments: how a person appears in the public log without being identified.

A ``choice_changed`` or ``erasure`` entry names its person only by a *commitment*::

    HMAC-SHA256(person_secret, "confide/commitment/v1" 0x00 kind 0x00 event_id)

``person_secret`` is a random 32-byte salt the choices party keeps for that person (see
``confide.usage.salts``) and ``event_id`` the choices registry's id of the change (for an
erasure: the id of the ``share_nothing`` change that caused it). Without the secret a
commitment is indistinguishable from random: nobody can test a guessed NHS number against it,
and two commitments of one person cannot be linked to each other. With it, the choices party
(acting for a person who passed the identity check) recomputes the person's commitments and
finds their entries in the log. Forgetting the secret makes the person's entries unlinkable
for ever, the entries themselves staying in the log untouched.
"""

from __future__ import annotations

import hashlib
import hmac

from confide.common.errors import InvalidInput

COMMITMENT_VERSION = b"confide/commitment/v1"
SECRET_SIZE = 32
KINDS = ("choice_changed", "erasure")


def commitment_for(person_secret: bytes, event_id: str, kind: str = "choice_changed") -> str:
    """The 64-hex-digit commitment a ``kind`` entry carries for one person's event.

    The kind is part of the message, so the same event id never yields the same value in two
    kinds of entry (an erasure cannot be matched to its choice change by an outsider).
    """
    if len(person_secret) < SECRET_SIZE:
        raise InvalidInput(
            "A commitment secret must be at least 32 random bytes.",
            hint="Take person secrets from the choices party's salt store.",
        )
    if kind not in KINDS:
        raise InvalidInput(f"Commitments are made for {' and '.join(KINDS)} entries, not '{kind}'.")
    if not event_id or "\x00" in event_id:
        raise InvalidInput("A commitment needs a non-empty event id without NUL characters.")
    message = COMMITMENT_VERSION + b"\x00" + kind.encode() + b"\x00" + event_id.encode()
    return hmac.new(person_secret, message, hashlib.sha256).hexdigest()


def erasure_commitment(person_secret: bytes, change_id: str) -> str:
    """The commitment of the erasure that the ``share_nothing`` change ``change_id`` caused."""
    return commitment_for(person_secret, change_id, "erasure")


def matches(commitment: str, person_secret: bytes, event_id: str, kind: str) -> bool:
    """Whether ``commitment`` is this person's for this event (constant-time comparison)."""
    return hmac.compare_digest(commitment, commitment_for(person_secret, event_id, kind))
