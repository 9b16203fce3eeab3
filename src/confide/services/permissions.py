"""Methods only a person may call: no party's code calls them on another party.

A service already serves only the parties allowed to call it (:data:`confide.services.rpc.
CALLERS`); these methods it serves only to the operator (a person's command against a running
deployment), so a compromised party cannot, say, rotate the pseudonymiser's key.
"""

from __future__ import annotations

from confide.services.deployment import OPERATOR

OPERATOR_ONLY: dict[str, frozenset[str]] = {
    "pseudonymiser": frozenset({"rotate_key", "decide_review"}),
    "ledger": frozenset({"sign_head"}),
}


def may_call(caller: str, party: str, method: str) -> bool:
    """Whether ``caller`` may call ``method`` of ``party`` (once it may call ``party`` at all)."""
    return caller == OPERATOR or method not in OPERATOR_ONLY.get(party, frozenset())
