"""The demo's witnesses: two, each with its own folder and key, run in-process.

A real deployment has witnesses run by other organisations, reached over HTTP
(``confide ledger add-witness --url``); the demo keeps them in the home so it needs nothing
else, while they still check and cosign through the same request and reply.
"""

from __future__ import annotations

from confide.common.home import Home
from confide.ledger.witnessing import WitnessSpec, add_witness
from confide.witness.service import Witness

FOLDER = "witnesses"
NAMES = ("witness-1", "witness-2")


def demo_witnesses(home: Home) -> list[str]:
    """Make the demo's witnesses (once), have each watch this home's ledger, and list them as
    the ledger's witnesses; their verifier keys."""
    from confide.composition import compose

    with compose(home) as parties:
        origin, log_key = parties.ledger.signer.name, parties.ledger.verifier.vkey
    keys = []
    for name in NAMES:
        relative = f"{FOLDER}/{name}"
        with Witness.open(home.root / relative, name=f"demo.confide.local/{name}") as witness:
            witness.trust(origin, log_key)
            keys.append(witness.verifier.vkey)
        add_witness(home.party("ledger"), WitnessSpec(keys[-1], folder=relative))
    return keys
