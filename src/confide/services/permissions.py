"""Who may call which method of which party, and which ledger entries each party may write.

One table (:data:`MAY_CALL`), from the flows between the parties: a party's relay delivering
its events, the hub's ingest and the TRE it serves, the pseudonymiser's checks of choices, the
web app's pages and APIs. The operator (a person's command against a running deployment) may
call every method a party serves; anything else not in the table is refused before it runs.
The ledger also ties each kind of entry to the parties that record it (:data:`MAY_WRITE`),
so no party can log an event as if another had.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confide.services.deployment import OPERATOR

_LEDGER_READS = (
    "head", "entries", "decoded", "root_at", "inclusion_proof", "consistency_proof",
    "checkpoint_note", "verifier_key", "checkpoint", "witness_keys",
)  # fmt: skip
_TRE = ("tre.run", "tre.show", "tre.history", "tre.budget")
_REVIEW = ("review.queue", "review.item", "review.vote")

# caller → party → the methods it may call (the operator: every method served).
_FLOWS: dict[str, dict[str, tuple[str, ...]]] = {
    "choices": {  # its relay: erasures (pseudonyms, the hub's stores) and ledger entries
        "pseudonymiser": ("pseudonyms_to_erase",),
        "hub": ("erase_everywhere", "after_erasure", "settle"),
        "ledger": ("append_once", *_LEDGER_READS),
    },
    "pseudonymiser": {  # who shares nothing; type 1 codes seen at a practice
        "choices": ("shares_nothing", "apply_gp_codes", "settle"),
    },
    "hub": {  # ingest, readmission, erasure's notices, and the TRE it serves
        "pseudonymiser": (
            "pseudonymise_submission", "resolutions", "pseudonyms_for", "public_key",
            "linkage_quality", "pending_linkage_count", "shares_nothing",
        ),
        "choices": (
            "holders", "version", "current", "current_many", "derived_current",
            "events_since", "facts", "shares_nothing", "settle",
        ),
        "access": (
            "authorise_query", "project", "projects", "organisation", "organisations",
            "principal_for", "authenticate", "person", "decisions", "audit_trail", "settle",
        ),
        "ledger": ("append", "append_many", "append_once", *_LEDGER_READS),
    },
    "access": {"ledger": ("append_once", *_LEDGER_READS)},  # its relay
    "web": {  # people's choices, staff's console, the TRE's pages, the public ledger
        "choices": (
            "set", "bulk_set", "apply_gp_code", "current", "current_many", "facts",
            "history", "holders", "version", "enrol_demographics", "record_lpa",
            "revoke_lpa", "shares_nothing", "settle", "publishable_statistics",
        ),
        "pseudonymiser": (
            "pseudonyms_for", "public_key", "linkage_quality", "pending_linkage_count",
            "review_items",
        ),
        "hub": ("enrol", "ingest", "settle", *_TRE, *_REVIEW),
        "access": (
            "create_organisation", "organisation", "organisations", "add_person",
            "revoke_role", "person", "organisations_of", "create_client", "revoke_client",
            "issue_token", "authenticate", "principal_for", "project", "projects",
            "history", "apply", "submit", "approve", "reject", "suspend", "reinstate",
            "authorise_query", "audit_trail", "decisions", "settle",
        ),
        "ledger": ("append", "append_many", *_LEDGER_READS),
    },
}  # fmt: skip
MAY_CALL: dict[str, dict[str, frozenset[str]]] = {
    caller: {party: frozenset(methods) for party, methods in parties.items()}
    for caller, parties in _FLOWS.items()
}

# The kinds of ledger entry each party records (the operator: any).
MAY_WRITE: dict[str, frozenset[str]] = {
    "choices": frozenset({"choice_changed", "erasure"}),
    "hub": frozenset(
        {"submission_ingested", "deletion_notice", "query_run", "output_checked", "review_vote"}
        | {"release", "refusal"}
    ),
    "access": frozenset({"project_applied", "project_approved", "refusal"}),
    "web": frozenset({"rollout"}),
}
_KIND_AT = {"append": None, "append_many": 0, "append_once": 1}  # where an item names its kind


def may_call(caller: str, party: str, method: str) -> bool:
    """Whether ``caller`` may call ``method`` of ``party``."""
    return caller == OPERATOR or method in MAY_CALL.get(caller, {}).get(party, frozenset())


def callers_of(party: str) -> frozenset[str]:
    """Every caller that may call some method of ``party``."""
    return frozenset({OPERATOR, *(c for c, parties in MAY_CALL.items() if party in parties)})


def may_write(caller: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> bool:
    """Whether every entry a call of the ledger's ``method`` would append is of a kind
    ``caller`` records (a call naming no kind it may write appends nothing)."""
    if caller == OPERATOR or method not in _KIND_AT:
        return True
    allowed = MAY_WRITE.get(caller, frozenset())
    try:
        kinds = _kinds(method, args, kwargs)
    except (IndexError, KeyError, TypeError):
        return False
    return all(kind in allowed for kind in kinds)


def _kinds(method: str, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    if method == "append":
        return [args[0] if args else kwargs["kind"]]
    items: Iterable[Any] = args[0] if args else kwargs["items"]
    at = _KIND_AT[method]
    return [item[at] for item in items]


def rules_table() -> str:
    """The table of :data:`MAY_CALL` and :data:`MAY_WRITE` for the operators' guide."""
    lines = ["| Caller | Party | Methods |", "| --- | --- | --- |"]
    for caller, parties in MAY_CALL.items():
        for party, methods in parties.items():
            lines.append(f"| {caller} | {party} | {', '.join(sorted(methods))} |")
    lines.append(f"| {OPERATOR} | every party | every method it serves |")
    lines += ["", "| Party | Ledger entries it may record |", "| --- | --- |"]
    lines += [f"| {party} | {', '.join(sorted(kinds))} |" for party, kinds in MAY_WRITE.items()]
    lines.append(f"| {OPERATOR} | any kind |")
    return "\n".join(lines)
