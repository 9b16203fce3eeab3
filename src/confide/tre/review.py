"""The review queue: outputs the machine could not pass wait for two independent checkers.

Rules (as OpenSAFELY's Airlock, made strict):

* only people with the ``output_checker`` role in an approving body review, and never outputs
  of their own organisation (so an applicant never reviews their own project's output);
* each checker votes once, approve or reject, with a reason;
* votes are blind: until the output is decided a checker sees only their own vote and how many
  votes are in, never the other's;
* two approvals release the output (ledger ``release``); any rejection refuses it (ledger
  ``refusal``). The decision is a compare-and-set on the stored status, so it happens once
  even when both votes arrive together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from confide.access.errors import Conflict, Forbidden
from confide.access.model import Principal, Role
from confide.common.errors import InvalidInput
from confide.tre.differencing import SketchStore
from confide.tre.disclosure import OutputStatus
from confide.tre.outcomes import (
    Entry,
    OutputCheck,
    checked_entry,
    refusal_entry,
    release_entry,
    vote_entries,
)
from confide.tre.release_files import MEMBERSHIP_FILES, SKETCH_SUFFIX
from confide.tre.store import QueryRecord, TreStore, Vote, query_not_found

APPROVALS_NEEDED = 2
METHOD = "two_checker_review"
HELD = str(OutputStatus.HELD_FOR_REVIEW)


class LedgerPort(Protocol):
    def append_many(self, items: Any) -> list[int]: ...


class ReviewQueue:
    def __init__(
        self,
        store: TreStore,
        ledger: LedgerPort,
        organisations_of: Callable[[str], frozenset[str]] | None = None,
        *,
        releases_stopped: Callable[[], str | None],
    ) -> None:
        self.store = store
        self.releases_stopped = releases_stopped  # the roll-out's pause: why not, or None
        self.ledger = ledger
        # person id → every organisation they hold a role in (the access party's answer):
        # nobody checks an output of an organisation they belong to, whichever one they act for.
        self.organisations_of = organisations_of

    # --- who may review ---------------------------------------------------------------------

    @staticmethod
    def _require_checker(principal: Principal) -> None:
        if not (principal.approving_body and principal.has(Role.OUTPUT_CHECKER)):
            raise Forbidden(
                "You need the output_checker role in an approving body to review outputs.",
                hint="Ask an administrator of your approving body to grant the role.",
            )

    def _reviewable(self, principal: Principal, query_id: str) -> QueryRecord:
        self._require_checker(principal)
        record = self.store.query(query_id)
        if self._conflicted(principal, record):
            raise Forbidden("Checkers never review outputs of their own organisation.")
        if record.person_id == principal.person_id:  # pragma: no cover - implied above
            raise Forbidden("Nobody reviews the output of their own query.")
        if record.status != HELD and not self.store.votes(query_id):
            raise query_not_found()
        return record

    def _conflicted(self, principal: Principal, record: QueryRecord) -> bool:
        """The checker acts for, or belongs in any role to, the output's organisation."""
        if record.organisation_id == principal.organisation_id:
            return True
        if self.organisations_of is None:
            return False
        return record.organisation_id in self.organisations_of(principal.person_id)

    # --- reading ----------------------------------------------------------------------------

    def queue(self, principal: Principal) -> list[dict[str, Any]]:
        """Outputs waiting for review that this checker may review."""
        self._require_checker(principal)
        items = []
        for record in self.store.queries_with_status(HELD):
            if self._conflicted(principal, record):
                continue
            items.append(self._item(principal, record))
        return items

    def item(self, principal: Principal, query_id: str) -> dict[str, Any]:
        return self._item(principal, self._reviewable(principal, query_id))

    def _item(self, principal: Principal, record: QueryRecord) -> dict[str, Any]:
        votes = self.store.votes(record.id)
        decided = record.status != HELD
        mine = next((vote for vote in votes if vote.checker_id == principal.person_id), None)
        item: dict[str, Any] = {
            "id": record.id,
            "project": record.project_slug,
            "sql": record.sql_text,
            "status": record.status,
            "reason": record.reason,
            "output": record.result,
            "votes_in": len(votes),
            "votes_needed": APPROVALS_NEEDED,
            "your_vote": _vote(mine) if mine else None,
        }
        if decided:
            item["votes"] = [_vote(vote) for vote in votes]
        return item

    # --- voting -----------------------------------------------------------------------------

    def vote(self, principal: Principal, query_id: str, approve: bool, reason: str) -> dict:
        """Record this checker's vote and decide the output when the votes allow."""
        record = self._reviewable(principal, query_id)
        if record.status != HELD:
            raise Conflict("This output has already been decided.")
        text = " ".join(str(reason or "").split())
        if not text:
            raise InvalidInput("A reason is required with every vote.")
        if len(text) > 2000:
            raise InvalidInput("The reason must be at most 2000 characters long.")
        if approve and (stopped := self.releases_stopped()):
            raise Conflict(f"No output can be released now: {stopped}.", hint="Vote again later.")
        self.store.add_vote(record.id, principal.person_id, bool(approve), text)
        self._decide(record)
        return self.item(principal, record.id)

    def _decide(self, record: QueryRecord) -> None:
        votes = self.store.votes(record.id)
        rejections = [vote for vote in votes if not vote.approve]
        approvals = [vote for vote in votes if vote.approve]
        if rejections:
            self._refuse(record, rejections[0].reason)
        elif len(approvals) >= APPROVALS_NEEDED:
            self._release(record)

    def _release(self, record: QueryRecord) -> None:
        assert record.release is not None and record.result is not None
        body = release_entry(record.release, record.id, record.result)
        if not self.store.decide(
            record.id, from_status=HELD, to_status=str(OutputStatus.RELEASED), reason=None,
            release=body,
        ):  # fmt: skip
            return
        release_id = body["release_id"]
        for suffix in MEMBERSHIP_FILES:
            pending = self.store.pending / f"{release_id}.{suffix}"
            if pending.exists():
                os.replace(pending, self.store.releases / pending.name)
        sketches = self.store.pending / f"{release_id}.{SKETCH_SUFFIX}"
        if sketches.exists():  # later outputs are checked against this one too
            store = SketchStore(self.store.sketches)
            target = store.path(record.organisation_id, record.project_id, release_id)
            os.replace(sketches, target)
        votes = vote_entries(record, self.store.votes(record.id))
        checked = checked_entry(record, "passed", OutputCheck(METHOD))
        self.ledger.append_many([*votes, checked, Entry("release", body)])

    def _refuse(self, record: QueryRecord, reason: str) -> None:
        why = f"refused by an output checker: {reason}"
        if not self.store.decide(
            record.id, from_status=HELD, to_status=str(OutputStatus.REFUSED), reason=why
        ):
            return
        if record.release_id:
            for suffix in (*MEMBERSHIP_FILES, SKETCH_SUFFIX):
                (self.store.pending / f"{record.release_id}.{suffix}").unlink(missing_ok=True)
        refusal = refusal_entry(
            record, why, subject="output", fallback="refused by an output checker"
        )
        votes = vote_entries(record, self.store.votes(record.id))
        checked = checked_entry(record, "failed", OutputCheck(METHOD))
        self.ledger.append_many([*votes, checked, refusal])


def _vote(vote: Vote) -> dict[str, Any]:
    return {"approve": bool(vote.approve), "reason": vote.reason, "at": str(vote.at)}
