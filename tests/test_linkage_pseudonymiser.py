"""Probabilistic linkage inside the pseudonymiser, through its own interface.

Two practices and a trust of a synthetic area: the model is trained on the trust's
submission, records without a usable NHS number link to the right person, records whose person
is not known yet wait, and a later practice submission resolves them. Reviewers' decisions
link (or never again suggest) a candidate. Nothing identifying reaches the hub's answer.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from linkage_world import Area, identities, make_area, sealed, swappable, unsure_variants

from confide.common.home import Home
from confide.common.sealing import seal_table
from confide.pseudonymiser import Pseudonymiser


class Run:
    """A pseudonymiser fed the area: B86001 (two thirds of the people), the trust RR8,
    then B86002 (the rest)."""

    def __init__(self, home: Home, area: Area) -> None:
        self.area = area
        self.p = Pseudonymiser.open(home)
        key = self.p.public_key()
        split = 2 * area.people.num_rows // 3
        self.first = self.p.pseudonymise_submission(
            "B86001", "s-gp1", sealed(area.people.slice(0, split), key)
        )
        self.trust = self.p.pseudonymise_submission("RR8", "s-rr8", sealed(area.hospital, key))
        self.late = set(area.people.column("nhs_number").to_pylist()[split:])
        self.second = self.p.pseudonymise_submission(
            "B86002", "s-gp2", sealed(area.people.slice(split), key)
        )

    def expected(self) -> list[str | None]:
        """Each hospital record's true person's pseudonym (None for outsiders)."""
        return self.p.pseudonyms_for(self.area.truth)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    area = make_area(3000, seed=43)
    made = Run(Home.at(tmp_path_factory.mktemp("linkage")), area)
    yield made
    made.p.close()


def test_the_model_is_trained_on_the_first_submission_of_mostly_known_people(run) -> None:
    trained = run.p.linkage.model()
    assert trained is not None
    assert trained.facts["records"] == run.area.hospital.num_rows
    assert trained.facts["people"] == 2 * run.area.people.num_rows // 3


def test_records_without_a_usable_number_link_to_the_right_person_and_no_other(run) -> None:
    expected = run.expected()
    rows = run.trust.to_pylist()
    probabilistic = [r for r in rows if r["linked_by"] == "probabilistic"]
    assert len(probabilistic) > 20
    for row in rows:
        if row["status"] == "linked":
            assert row["pseudonym"] == expected[row["ref"]]
    for row in probabilistic:
        assert row["match_weight"] is not None and row["match_weight"] > 0
        assert run.area.hospital.column("nhs_number")[row["ref"]].as_py() is None or (
            row["reason"] is not None
        )


def test_a_later_submission_resolves_records_that_were_waiting_for_it(run) -> None:
    expected = run.expected()
    waiting = [
        r["ref"]
        for r in run.trust.to_pylist()
        if r["status"] == "unlinked" and run.area.truth[r["ref"]] in run.late
    ]
    assert waiting, "some records of the later practice's people had no usable number"
    resolved = run.p.resolutions(0).to_pylist()
    assert resolved and {r["source"] for r in resolved} == {"RR8"}
    for r in resolved:
        assert r["submission_id"] == "s-rr8" and r["linked_by"] == "later_record"
        assert r["pseudonym"] == expected[r["ref"]] and r["status"] == "linked"
    assert {r["ref"] for r in resolved} <= set(waiting)
    assert len(resolved) >= 0.8 * len(waiting)
    # Sequence numbers let the hub ask only for what it has not applied.
    last = max(r["seq"] for r in resolved)
    assert run.p.resolutions(last).num_rows == 0


def test_no_person_is_split_and_no_two_people_merged(run) -> None:
    by_person: dict[str, set[str]] = {}
    by_pseudonym: dict[str, set[str]] = {}
    truth = run.area.people.column("nhs_number").to_pylist()
    split = 2 * len(truth) // 3
    pairs = list(zip(truth[:split], run.first.column("pseudonym").to_pylist(), strict=True))
    pairs += zip(truth[split:], run.second.column("pseudonym").to_pylist(), strict=True)
    pairs += [(run.area.truth[r["ref"]], r["pseudonym"]) for r in run.trust.to_pylist()]
    pairs += [(run.area.truth[r["ref"]], r["pseudonym"]) for r in run.p.resolutions(0).to_pylist()]
    for person, pseudonym in pairs:
        if pseudonym is not None:
            by_person.setdefault(person, set()).add(pseudonym)
            by_pseudonym.setdefault(pseudonym, set()).add(person)
    assert all(len(p) == 1 for p in by_person.values())
    assert all(len(p) == 1 for p in by_pseudonym.values())


def test_quality_per_source_counts_and_rates(run) -> None:
    quality = {q["source"]: q for q in run.p.linkage_quality()}
    rr8 = quality["RR8"]
    assert rr8["submitted"] == run.area.hospital.num_rows
    assert rr8["linked"] == rr8["by_nhs_number"] + rr8["probabilistic"] + rr8["linked_later"]
    assert rr8["linked_later"] == run.p.resolutions(0).num_rows
    assert rr8["probabilistic"] > 0 and rr8["linkage_rate"] > 0.97
    assert 0 <= rr8["estimated_false_match_rate"] < 0.001
    assert quality["B86001"]["linkage_rate"] == 1.0
    assert quality["B86001"]["estimated_false_match_rate"] == 0.0


def test_nothing_identifying_leaves_in_answers_reasons_or_quality(run) -> None:
    identifiers = set()
    for table in (run.area.people, run.area.hospital):
        for column in ("nhs_number", "birth_date", "postcode"):
            identifiers.update(v for v in table.column(column).to_pylist() if v)
    answers = [run.first, run.trust, run.second, run.p.resolutions(0)]
    text = json.dumps([a.to_pylist() for a in answers], default=str)
    text += json.dumps(run.p.linkage_quality(), default=str)
    assert not [i for i in identifiers if i in text]
    reasons = [r for r in run.trust.column("reason").to_pylist() if r]
    assert any("date of birth" in r for r in reasons)


def _unsure(area: Area) -> pa.Table:
    """Possible matches of six people of the area (see ``unsure_variants``)."""
    rows = [row for row in area.people.to_pylist() if swappable(row["birth_date"])][:6]
    crafted = [v for row in rows for v in unsure_variants(row)]
    return pa.Table.from_pylist(crafted, schema=area.people.schema)


def test_a_reviewer_decides_and_the_decision_holds_when_the_record_comes_again(run) -> None:
    area, p = run.area, run.p
    records = _unsure(area)
    out = p.pseudonymise_submission("RAE", "s-rae-1", sealed(records, p.public_key()))
    mine = [q for q in p.review_items(10_000) if q["source"] == "RAE"]
    assert len(mine) >= 2, out.column("reason").to_pylist()
    assert all(out.column("status")[int(q["record_id"].split(":")[1])].as_py() == "unlinked"
               for q in mine)  # fmt: skip
    first, second = sorted(mine, key=lambda q: q["id"])[:2]
    first_ref, second_ref = (int(q["record_id"].split(":")[1]) for q in (first, second))
    # Reviewers see identifiers: the record's beside the candidate's.
    assert first["record_birth_date"] == records.column("birth_date")[first_ref].as_py()
    assert first["candidate_nhs_number"] is not None
    p.decide_review(first["id"], True, "reviewer a")
    p.decide_review(second["id"], False, "reviewer b")
    resolved = p.resolutions(0).filter(pc.equal(p.resolutions(0).column("source"), "RAE"))
    by_ref = {r["ref"]: r for r in resolved.to_pylist()}
    assert by_ref[first_ref]["linked_by"] == "review"
    assert by_ref[first_ref]["pseudonym"] == first["candidate"]
    assert second_ref not in by_ref

    # The source sends the same records again: confirmed links at once, rejected never again.
    again = p.pseudonymise_submission("RAE", "s-rae-2", sealed(records, p.public_key()))
    rows = {r["ref"]: r for r in again.to_pylist()}
    assert rows[first_ref]["pseudonym"] == first["candidate"]
    assert rows[second_ref]["pseudonym"] != second["candidate"]
    requeued = [q for q in p.review_items(10_000) if q["record_id"] == f"s-rae-2:{second_ref}"]
    assert all(q["candidate"] != second["candidate"] for q in requeued)


def test_a_person_who_shares_nothing_is_never_linked_probabilistically(tmp_path, run) -> None:
    area = run.area
    p = Pseudonymiser.open(Home.at(tmp_path))
    try:
        p.linkage.use_model(run.p.linkage.model())
        key = p.public_key()
        p.pseudonymise_submission("B86001", "g", sealed(area.people, key))
        # Known to the index, then they choose to share nothing; then a hospital sends their
        # records without NHS numbers.
        leaving = set(area.people.column("nhs_number").to_pylist()[:50])
        p.shares_nothing = lambda numbers: [n in leaving for n in numbers]
        noted = area.people.slice(0, 50).set_column(1, "nhs_number", pa.nulls(50, pa.string()))
        out = p.pseudonymise_submission("RR8", "t", [seal_table(identities(noted), key)])
        statuses = out.column("status").to_pylist()
        assert set(statuses) <= {"objector", "unlinked"} and statuses.count("objector") > 40
        assert out.column("pseudonym").null_count == 50
        assert p.pending_linkage_count() == statuses.count("unlinked")
    finally:
        p.close()


def test_records_that_waited_for_a_model_are_linked_once_one_is_trained(tmp_path, run) -> None:
    area = run.area
    p = Pseudonymiser.open(Home.at(tmp_path))
    try:
        key = p.public_key()
        early = area.people.slice(0, 40).set_column(1, "nhs_number", pa.nulls(40, pa.string()))
        first = p.pseudonymise_submission("RAE", "early", [seal_table(identities(early), key)])
        assert set(first.column("status").to_pylist()) == {"unlinked"}
        assert all(
            "waiting for probabilistic linkage" in r for r in first.column("reason").to_pylist()
        )
        p.pseudonymise_submission("B86001", "g", sealed(area.people, key))
        assert p.linkage.model() is None  # a practice's own people teach the model nothing
        p.pseudonymise_submission("RR8", "t", sealed(area.hospital, key))
        assert p.linkage.model() is not None
        resolved = p.resolutions(0).filter(pc.equal(p.resolutions(0).column("source"), "RAE"))
        expected = p.pseudonyms_for(area.people.column("nhs_number").to_pylist()[:40])
        assert resolved.num_rows >= 35
        for row in resolved.to_pylist():
            assert row["pseudonym"] == expected[row["ref"]]
    finally:
        p.close()
