"""Probabilistic linkage of each submission against the existing person index.

For a submission (after its valid NHS numbers are linked):

1. If there is no model yet, and this submission's people are mostly people the index already
   knows (a hospital after the GP practices), the model is trained on it (``training``).
   It is trained again once the index has grown fourfold.
2. What the submission says about its linked people is recorded (``people``): new people, and
   new postcodes for known ones.
3. Its records without a usable NHS number are scored against the people they share a date of
   birth, postcode or NHS number with (never the whole index), with term frequencies and the
   prior taken from the whole index; each is linked, queued for review, or held with the
   reason (``scoring``, ``review``, ``pending``).
4. Pending records of other submissions that share a blocking key with anyone new or changed
   are scored again: a later record can resolve an earlier pending one.

Nothing is re-run over the whole index: work follows the submission's own records and the
people they touch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from confide.pseudonymiser.linkage import db, model, records, scoring, training
from confide.pseudonymiser.linkage.engines import DuckDBEngine, Engine
from confide.pseudonymiser.linkage.pending import PendingRecords
from confide.pseudonymiser.linkage.people import BLOCKING_KEYS, LinkagePeople
from confide.pseudonymiser.linkage.quality import LinkageQuality
from confide.pseudonymiser.linkage.review import ReviewQueue

MIN_PEOPLE = 1_000  # a model is trained once the index holds this many people
MIN_RECORDS = 200  # on a submission with at least this many records
KNOWN_SHARE = 0.5  # most of whose linked people the index already knew
RETRAIN_GROWTH = 4  # and again once the index is this many times larger

ChoiceCheck = Callable[[list[str]], list[bool]]


@dataclass
class Outcome:
    """What linkage decided for each identity row of a submission."""

    pseudonym: list[str | None]
    match_weight: list[float | None]
    probability: list[float | None]
    linked_by: list[str | None]  # nhs_number | probabilistic
    objector: np.ndarray  # rows never to link, including people linked here who share nothing
    reason: list[str | None]


def _reason(base: str | None, decision: dict[str, Any]) -> str:
    why = base or "the NHS number could not be used"
    if decision["band"] == "review":
        return (
            f"{why}; a possible match (probability {decision['probability']:.1%}) awaits "
            "clerical review"
        )
    if decision["candidates"] == 0:
        return f"{why}; no person shares its date of birth, postcode or NHS number"
    return (
        f"{why}; the closest person matches with probability {decision['probability']:.1%}, "
        f"below the {model.REVIEW_PROBABILITY:.0%} needed for review"
    )


def _identified(ids: pa.Table, submission_id: str, rows: np.ndarray) -> pa.Table:
    """``rows`` of a submission's identities with their record id (``submission:ref``)."""
    taken = ids.take(pa.array(rows, pa.int64()))
    refs = pc.cast(taken.column("ref"), pa.string())
    prefix = pa.array([f"{submission_id}:"] * taken.num_rows, pa.string())
    return taken.append_column("record_id", pc.binary_join_element_wise(prefix, refs, ""))


def _reviewed(prepared: pa.Table, pairs: pa.Table, review: ReviewQueue) -> pa.Table:
    """Decisions for ``prepared`` from ``pairs``, as reviewers decided before for the same
    record (by fingerprint): a person they rejected is no candidate, one they confirmed is
    the link."""
    con = duckdb.connect()
    try:
        con.register("records", prepared.select(["unique_id", "fingerprint"]))
        con.register("pairs", pairs)
        con.register("rejected", review.decisions("not_a_match"))
        kept = con.sql(
            "SELECT p.* FROM pairs p JOIN records r ON r.unique_id = p.record_id "
            "ANTI JOIN rejected x ON x.fingerprint = r.fingerprint AND x.person_id = p.person_id"
        ).to_arrow_table()
        con.register("decided", scoring.decide(prepared, kept))
        con.register("confirmed", review.decisions("match"))
        return (
            con.sql(
                """SELECT d.record_id, coalesce(c.person_id, d.person_id) AS person_id,
                      d.match_weight, CASE WHEN c.person_id IS NULL THEN d.probability
                                           ELSE 1.0 END AS probability,
                      d.runner_up, d.candidates,
                      CASE WHEN c.person_id IS NULL THEN d.band ELSE 'link' END AS band
               FROM decided d JOIN records r ON r.unique_id = d.record_id
               LEFT JOIN confirmed c ON c.fingerprint = r.fingerprint
               ORDER BY d.record_id"""
            )
            .to_arrow_table()
            .cast(scoring.DECISIONS)
        )
    finally:
        con.close()


class Linkage:
    """The pseudonymiser's probabilistic linkage, on its own database connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection | None,
        folder: Path,
        *,
        engine: Callable[[], Engine] = DuckDBEngine,
        train_automatically: bool = True,
    ) -> None:
        if con is not None:
            self.bind(con)
        self._model_path = folder / "linkage" / "model.json"
        self._engine = engine
        self.train_automatically = train_automatically
        # Who has chosen to share nothing (given NHS numbers): set by the service.
        self.shares_nothing: ChoiceCheck | None = None

    def bind(self, con: duckdb.DuckDBPyConnection) -> None:
        """Work on ``con`` (the pseudonymiser opens its database only while it works on it,
        so other processes can take their turn in between)."""
        db.create(con)
        self.people = LinkagePeople(con)
        self.pending = PendingRecords(con)
        self.review = ReviewQueue(con)
        self.quality = LinkageQuality(con)

    # -- the model ----------------------------------------------------------------------------
    def model(self) -> training.TrainedModel | None:
        if not self._model_path.exists():
            return None
        return training.TrainedModel.from_json(self._model_path.read_bytes())

    def use_model(self, trained: training.TrainedModel) -> None:
        """Keep ``trained`` as the model (written whole, then swapped in)."""
        self._model_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._model_path.with_suffix(".tmp")
        tmp.write_bytes(trained.to_json())
        tmp.replace(self._model_path)

    def _train_if_due(
        self, ids: pa.Table, submission_id: str, eligible: np.ndarray, known: float
    ) -> tuple[training.TrainedModel | None, bool]:
        """(the model to link with, whether it was trained just now)."""
        current = self.model()
        people = self.people.count()
        grown = current is not None and people >= RETRAIN_GROWTH * int(current.facts["people"])
        if not self.train_automatically or not (current is None or grown):
            return current, False
        if people < MIN_PEOPLE or len(eligible) < MIN_RECORDS or known < KNOWN_SHARE:
            return current, False
        rows = records.prepare(_identified(ids, submission_id, eligible), "record_id")
        everyone = records.prepare(self.people.table(), "patient_id")
        engine = self._engine()
        try:
            trained = training.train(engine, rows, everyone)
        finally:
            engine.close()
        self.use_model(trained)
        return trained, True

    # -- linking ------------------------------------------------------------------------------
    def _decide(self, trained: training.TrainedModel, prepared: pa.Table) -> pa.Table:
        """One decision per prepared record, against the people it can be paired with."""
        candidates = self.people.candidates(prepared)
        people = records.prepare(self.people.table(candidates), "patient_id")
        engine = self._engine()
        try:
            pairs = scoring.score(
                engine,
                trained,
                prepared,
                people,
                people_count=self.people.count(),
                frequencies=self.people.frequencies(),
            )
        finally:
            engine.close()
        return _reviewed(prepared, pairs, self.review)

    def choosers(self, pseudonyms: list[str]) -> set[str]:
        """Those of ``pseudonyms`` whose person has chosen to share nothing."""
        if self.shares_nothing is None or not pseudonyms:
            return set()
        numbers = self.people.numbers_of(pseudonyms)
        asked = sorted(numbers)
        answers = self.shares_nothing([numbers[p] for p in asked])
        return {p for p, no in zip(asked, answers, strict=True) if no}

    def link_submission(
        self,
        source: str,
        submission_id: str,
        ids: pa.Table,
        pseudonyms: list[str | None],
        objector: np.ndarray,
        reasons: list[str | None],
    ) -> Outcome:
        """Link ``ids`` (a submission's identity rows) beyond their valid NHS numbers.

        ``pseudonyms`` holds the people already linked on NHS number (None elsewhere);
        ``objector`` the rows never to link; ``reasons`` why each unlinked number is unusable.
        Rows still unlinked afterwards are held as pending records, with their reason."""
        self.pending.forget_superseded(source, submission_id)
        linked = np.array([p is not None for p in pseudonyms], dtype=bool)
        outcome = Outcome(
            pseudonym=list(pseudonyms),
            match_weight=[None] * ids.num_rows,
            probability=[None] * ids.num_rows,
            linked_by=["nhs_number" if p is not None else None for p in pseudonyms],
            objector=objector.copy(),
            reason=list(reasons),
        )
        found = np.flatnonzero(linked)
        seen = records.prepare(
            ids.take(pa.array(found, pa.int64())).append_column(
                "pseudonym", pa.array([pseudonyms[i] for i in found], pa.string())
            ),
            "pseudonym",
        )
        known = self.people.known_share(seen)
        trained, fresh = self._train_if_due(ids, submission_id, np.flatnonzero(~objector), known)
        changed = self.people.observe(seen)

        waiting = np.flatnonzero(~linked & ~objector)
        decisions = None
        if trained is not None and len(waiting):
            identified = _identified(ids, submission_id, waiting)
            decisions = self._decide(trained, records.prepare(identified, "record_id"))
            self._apply(outcome, decisions, dict(zip(identified.column("record_id").to_pylist(),
                                                     waiting.tolist(), strict=True)))  # fmt: skip
        held = np.array(
            [i for i in waiting if outcome.pseudonym[i] is None and not outcome.objector[i]],
            dtype=np.int64,
        )
        if trained is None:
            for i in held:
                outcome.reason[i] = (
                    f"{outcome.reason[i] or 'the NHS number could not be used'}; waiting for "
                    "probabilistic linkage (its model is trained once the person index holds "
                    f"{MIN_PEOPLE:,} people and a submission mostly of people it knows arrives)"
                )
        self.pending.hold(
            source,
            submission_id,
            ids.take(pa.array(held, pa.int64()))
            .select(["ref", "nhs_number", "birth_date", "postcode", "sex"])
            .append_column("reason", pa.array([outcome.reason[i] for i in held], pa.string())),
        )
        if decisions is not None:
            self.review.queue(decisions.filter(pc.equal(decisions.column("band"), "review")))
        if trained is not None and (fresh or changed.num_rows):
            # A new model scores every waiting record; otherwise those near what changed.
            self.resolve_pending(trained, None if fresh else changed, excluding=submission_id)
        self._record_quality(source, submission_id, outcome, linked)
        return outcome

    def _apply(self, outcome: Outcome, decisions: pa.Table, rows: dict[str, int]) -> None:
        """Decisions onto the outcome; ``rows`` gives each record id's row number."""
        decided = decisions.to_pylist()
        links = [d["person_id"] for d in decided if d["band"] == "link"]
        choosers = self.choosers(links)
        for d in decided:
            i = rows[d["record_id"]]
            if d["band"] == "link" and d["person_id"] in choosers:
                outcome.objector[i] = True
            elif d["band"] == "link":
                outcome.pseudonym[i] = d["person_id"]
                outcome.match_weight[i] = d["match_weight"]
                outcome.probability[i] = d["probability"]
                outcome.linked_by[i] = "probabilistic"
            else:
                outcome.reason[i] = _reason(outcome.reason[i], d)

    def resolve_pending(
        self,
        trained: training.TrainedModel,
        changed: pa.Table | None,
        *,
        excluding: str | None = None,
    ) -> int:
        """Score again the pending records (bar ``excluding``'s) that share a blocking key
        with anyone in ``changed`` (all of them when None); link those now certain, queue
        those now possible. Returns how many were linked."""
        waiting = self.pending.records(excluding=excluding)
        if waiting.num_rows == 0 or (changed is not None and changed.num_rows == 0):
            return 0
        prepared = records.prepare(waiting, "record_id")
        if changed is not None:
            touched = records.prepare(self.people.table(changed), "patient_id")
            prepared = _sharing_a_key(prepared, touched)
        if prepared.num_rows == 0:
            return 0
        decisions = self._decide(trained, prepared)
        band = decisions.column("band")
        links = decisions.filter(pc.equal(band, "link"))
        choosers = self.choosers(links.column("person_id").to_pylist())
        if choosers:
            keep = pc.invert(pc.is_in(links.column("person_id"), pa.array(sorted(choosers))))
            links = links.filter(keep)
        resolved = self.pending.resolve(
            links.rename_columns(["record_id", "pseudonym", *links.column_names[2:]]),
            "later_record",
        )
        self.review.queue(decisions.filter(pc.equal(band, "review")))
        self.review.withdraw(decisions.filter(pc.equal(band, "pending")))
        self.pending.set_reasons(
            decisions.filter(pc.not_equal(band, "link"))
            .select(["record_id"])
            .append_column("reason", _reasons_for(waiting, decisions))
        )
        return resolved

    def decide_review(self, item_id: int, match: bool, reviewer: str) -> dict[str, Any]:
        """A reviewer's decision on a queued item; a match links the record."""
        item = self.review.item(item_id)
        raw = {k.removeprefix("record_"): item[k] for k in item if k.startswith("record_")}
        fingerprint = records.prepare(pa.Table.from_pylist([raw]), "id").column("fingerprint")
        self.review.record_decision(item, match, reviewer, fingerprint[0].as_py())
        if match:
            link = pa.table(
                {
                    "record_id": [item["record_id"]],
                    "pseudonym": [item["candidate"]],
                    "match_weight": [item["match_weight"]],
                    "probability": [item["probability"]],
                }
            )
            self.pending.resolve(link, "review")
        return {"id": item_id, "decision": "match" if match else "not_a_match"}

    def _record_quality(
        self, source: str, submission_id: str, outcome: Outcome, by_number: np.ndarray
    ) -> None:
        probabilistic = [
            p for p, how in zip(outcome.probability, outcome.linked_by, strict=True)
            if how == "probabilistic" and p is not None
        ]  # fmt: skip
        self.quality.record(
            source,
            submission_id,
            submitted=len(outcome.pseudonym),
            excluded=int(outcome.objector.sum()),
            by_nhs_number=int((by_number & ~outcome.objector).sum()),
            probabilistic=len(probabilistic),
            expected_false=float(sum(1 - p for p in probabilistic)),
        )


def _sharing_a_key(prepared: pa.Table, people: pa.Table) -> pa.Table:
    """The records of ``prepared`` that share a blocking key with someone in ``people``."""
    con = duckdb.connect()
    try:
        con.register("r", prepared)
        con.register("p", people.select(list(BLOCKING_KEYS)))
        matches = " OR ".join(f"r.{k} IN (SELECT {k} FROM p)" for k in BLOCKING_KEYS)
        return con.sql(f"SELECT * FROM r WHERE {matches} ORDER BY unique_id").to_arrow_table()
    finally:
        con.close()


def _reasons_for(waiting: pa.Table, decisions: pa.Table) -> pa.Array:
    """Each not-linked decision's reason, built on the record's original NHS-number reason."""
    base = dict(
        zip(waiting.column("record_id").to_pylist(), waiting.column("reason").to_pylist(),
            strict=True)
    )  # fmt: skip
    return pa.array(
        [
            _reason(base[d["record_id"]].split("; ")[0], d)
            for d in decisions.to_pylist()
            if d["band"] != "link"
        ],
        pa.string(),
    )
