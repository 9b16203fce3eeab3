"""The embedded deployment's way to a witness: its ``add-checkpoint`` called in-process.

The request and reply are the bytes the HTTP API would carry, so the log cannot tell the two
apart and the witness checks exactly the same things.
"""

from __future__ import annotations

from pathlib import Path

from confide.ledger.add_checkpoint import WitnessReply
from confide.witness.service import Witness


class LocalWitness:
    """A witness whose folder is on this machine, asked without a network."""

    def __init__(self, witness: Witness) -> None:
        self.witness = witness

    @classmethod
    def open(cls, folder: Path) -> LocalWitness:
        """The witness already made in ``folder`` (never a new one in its place)."""
        return cls(Witness.open(folder, create=False))

    def add_checkpoint(self, request: bytes) -> WitnessReply:
        return self.witness.respond(request)

    def close(self) -> None:
        self.witness.close()
