"""A patient's usage report in plain English: what each release and each log entry means for them.

The report (from the choices and pseudonymiser side) says *whether* the person was in each
release; this module says *why*, from the report alone. The person's own ``choice_changed``
entries are in the report, in log order, so the choices they held when a release was logged
are those entries folded up to the release's log index; the choices policy then says which of
those choices covers the release's use. Nothing here reads anything but the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from confide.choices import policy
from confide.choices.model import Choice
from confide.common.errors import InvalidInput
from confide.usage.proofs import InclusionProof
from confide.usage.report import OwnEntry, ReleaseItem, UsageReport
from confide.web import labels
from confide.web.wording import BY_CHOICE

# The register's data forms as the policy names them.
POLICY_FORMS = {"aggregate": "aggregate", "dp": "dp_aggregate", "extract": "record_level"}
KNOWN = frozenset(c.value for c in Choice)


@dataclass(frozen=True)
class ProofView:
    """One inclusion proof, as the page shows it (links only for public release entries)."""

    index: int
    size: int
    leaf_hash: str
    root: str
    audit_path: list[str]
    checkpoint: str
    proof_href: str | None = None
    entry_href: str | None = None


@dataclass(frozen=True)
class ReleaseView:
    included: bool
    project: str
    project_id: str
    organisation: str
    purpose: str
    recipient: str
    legal_basis: str
    data_form: str
    date: str
    release_id: str
    why: str
    register_href: str
    proof: ProofView


@dataclass(frozen=True)
class OwnView:
    when: str
    what: list[str]
    proof: ProofView


def proof_view(proof: InclusionProof, root: str, *, public: bool) -> ProofView:
    """``public`` proofs (of release entries, listed in the public register) get links to the
    log's API; the person's own entries do not, so no request ever points at them."""
    links: dict[str, str] = {}
    if public:
        query = urlencode({"leaf_hash": proof.leaf_hash.hex(), "size": proof.size})
        links = {
            "proof_href": f"/api/ledger/proof/inclusion?{query}",
            "entry_href": f"/api/ledger/entries?start={proof.index}&end={proof.index + 1}",
        }
    return ProofView(
        index=proof.index,
        size=proof.size,
        leaf_hash=proof.leaf_hash.hex(),
        root=root,
        audit_path=[h.hex() for h in proof.audit_path],
        checkpoint=proof.checkpoint,
        **links,
    )


def held_before(own: list[OwnEntry], index: int) -> frozenset[Choice]:
    """The choices the person held just before log entry ``index``, from their own entries."""
    held: set[Choice] = set()
    for entry in sorted(own, key=lambda e: e.proof.index):
        if entry.proof.index >= index or entry.kind != "choice_changed":
            continue
        for name in entry.body.get("set", []):
            if name in KNOWN:
                held.add(Choice(name))
        for name in entry.body.get("cleared", []):
            if name in KNOWN:
                held.discard(Choice(name))
    return frozenset(held)


def _covering(item: ReleaseItem, held: frozenset[Choice]) -> list[Choice]:
    """Which of ``held`` the strict reading of the policy applies to this release's use."""
    try:
        terms = policy.terms(
            item.purpose,
            item.recipient_kind,
            item.legal_basis,
            POLICY_FORMS.get(item.data_form, "record_level"),
        )
    except InvalidInput:
        return []
    return [c for c in Choice if c in held and c in terms.excluding]


def why(item: ReleaseItem, held: frozenset[Choice]) -> str:
    """Why the person was in, or out of, one release, in a sentence."""
    covering = _covering(item, held)
    if item.status == "excluded":
        if covering:
            names = " and ".join(f"“{BY_CHOICE[c].label}”" for c in covering)
            return f"Left out because you had chosen: {names}."
        return "Left out because of the choices you had made at the time."
    if covering:
        return (
            "Included even though you had opted out, because this release was made under a "
            "rule that does not apply opt-outs to it. The release register says which rule."
        )
    if held:
        return "Included: the choices you had made at the time do not cover this use."
    return "Included: you had not opted out of anything at the time."


def _release(item: ReleaseItem, own: list[OwnEntry], root: str) -> ReleaseView:
    return ReleaseView(
        included=item.status == "included",
        project=item.project_title or item.project_id,
        project_id=item.project_id,
        organisation=item.organisation,
        purpose=labels.label(labels.PURPOSES, item.purpose),
        recipient=labels.label(labels.RECIPIENTS, item.recipient_kind),
        legal_basis=labels.label(labels.LEGAL_BASES, item.legal_basis),
        data_form=labels.label(labels.DATA_FORMS, item.data_form),
        date=labels.nice_date(item.date),
        release_id=item.release_id,
        why=why(item, held_before(own, item.proof.index)),
        register_href="/register?" + urlencode({"project": item.project_id}),
        proof=proof_view(item.proof, root, public=True),
    )


def _own(entry: OwnEntry, root: str) -> OwnView:
    if entry.kind == "erasure":
        what = ["Everything about you that had been uploaded was deleted from the central store."]
    else:
        what = [
            BY_CHOICE[Choice(name)].when_on if on else BY_CHOICE[Choice(name)].when_off
            for key, on in (("set", True), ("cleared", False))
            for name in entry.body.get(key, [])
            if name in KNOWN
        ]
    return OwnView(
        labels.nice_date(entry.logged_at), what, proof_view(entry.proof, root, public=False)
    )


def describe(report: UsageReport) -> dict[str, Any]:
    """Everything the usage page shows, newest first within each list."""
    root = report.checkpoint.root.hex()
    own = list(report.own_entries)

    def newest_first(items: list[ReleaseItem]) -> list[ReleaseView]:
        return [_release(i, own, root) for i in sorted(items, key=lambda i: -i.proof.index)]

    return {
        "included": newest_first(report.included),
        "excluded": newest_first(report.excluded),
        "own": [_own(e, root) for e in sorted(own, key=lambda e: -e.proof.index)],
        "unchecked": list(report.unchecked),
        "checked": report.releases_checked,
        "size": report.checkpoint.size,
        "root": root,
    }
