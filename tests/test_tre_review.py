"""Two independent, blind output checkers decide every held output."""

from __future__ import annotations

import pytest
from tre_world import TreWorld, build, hold

from confide.access.errors import Conflict, Forbidden
from confide.access.seed import PEOPLE
from confide.common.errors import InvalidInput


@pytest.fixture(scope="module")
def tre(tmp_path_factory: pytest.TempPathFactory) -> TreWorld:
    made = build(tmp_path_factory.mktemp("tre-review"), practices=1, patients=40)
    yield made
    made.close()


def _held(tre: TreWorld) -> str:
    researcher = tre.principal("researcher")
    return hold(tre.service, tre.registry, researcher, "demo-research", tre.numbers[0]).id


def test_two_approvals_release_the_output(tre: TreWorld) -> None:
    query_id = _held(tre)
    one, two = tre.principal("output_checker_1"), tre.principal("output_checker_2")
    assert query_id in [item["id"] for item in tre.review.queue(one)]
    first = tre.review.vote(one, query_id, True, "A single year of birth over 20 people: safe.")
    assert first["status"] == "held_for_review" and first["votes_in"] == 1
    assert "votes" not in first
    seen_by_two = tre.review.item(two, query_id)
    assert seen_by_two["your_vote"] is None and "votes" not in seen_by_two  # blind
    size = tre.ledger.head().size
    assert all(e.kind != "review_vote" for e in tre.ledger.decoded(0, size))  # not yet
    final = tre.review.vote(two, query_id, True, "Agree: no small cell.")
    assert final["status"] == "released" and len(final["votes"]) == 2
    shown = tre.service.show(tre.principal("researcher"), query_id)
    assert shown.status == "released" and shown.result["rows"]
    release_id = shown.release_id
    for suffix in ("salt", "contributors", "excluded"):
        assert (tre.store.releases / f"{release_id}.{suffix}").exists()
        assert not (tre.store.pending / f"{release_id}.{suffix}").exists()
    size = tre.ledger.head().size
    kinds = [(e.kind, e.body.get("method")) for e in tre.ledger.decoded(size - 4, size)]
    assert kinds == [
        ("review_vote", None),
        ("review_vote", None),
        ("output_checked", "two_checker_review"),
        ("release", None),
    ]
    votes = [e.body for e in tre.ledger.decoded(size - 4, size - 2)]
    assert [(v["order"], v["vote"]) for v in votes] == [(1, "approve"), (2, "approve")]
    assert votes[0]["reason"] == "A single year of birth over 20 people: safe."
    assert all("checker" not in str(v) for v in votes)  # checkers are not named
    assert query_id not in [item["id"] for item in tre.review.queue(one)]


def test_one_rejection_refuses_the_output(tre: TreWorld) -> None:
    query_id = _held(tre)
    record = tre.store.query(query_id)
    tre.review.vote(tre.principal("output_checker_2"), query_id, False, "Releases one value.")
    assert tre.store.query(query_id).status == "refused"
    assert not list(tre.store.pending.glob(f"{record.release_id}.*"))
    last = tre.ledger.decoded(tre.ledger.head().size - 1, tre.ledger.head().size)[0]
    assert last.kind == "refusal" and last.body["subject"] == "output"
    with pytest.raises(Conflict):
        tre.review.vote(tre.principal("output_checker_1"), query_id, True, "Too late.")


def test_nobody_votes_twice_and_reasons_are_required(tre: TreWorld) -> None:
    query_id = _held(tre)
    one = tre.principal("output_checker_1")
    with pytest.raises(InvalidInput):
        tre.review.vote(one, query_id, True, "   ")
    tre.review.vote(one, query_id, True, "Fine.")
    with pytest.raises(InvalidInput, match="already voted"):
        tre.review.vote(one, query_id, True, "Fine again.")
    assert tre.store.query(query_id).status == "held_for_review"


@pytest.mark.parametrize("who", ["researcher", "planner", "approver", "administrator"])
def test_only_output_checkers_of_another_organisation_review(tre: TreWorld, who: str) -> None:
    query_id = _held(tre)
    with pytest.raises(Forbidden):
        tre.review.queue(tre.principal(who))
    with pytest.raises(Forbidden):
        tre.review.vote(tre.principal(who), query_id, True, "Looks fine to me.")


def test_a_checker_who_belongs_to_the_outputs_organisation_never_reviews_it(
    tre: TreWorld,
) -> None:
    query_id = _held(tre)  # an output of demo-university
    checker = tre.principal("output_checker_1")  # acting for demo-dac
    assert query_id in [item["id"] for item in tre.review.queue(checker)]
    _, _, email, _ = PEOPLE["output_checker_1"]
    tre.access.add_person("demo-university", "Demo Output Checker One", email, ["applicant"])
    try:
        checker = tre.principal("output_checker_1")  # still acting for demo-dac
        assert query_id not in [item["id"] for item in tre.review.queue(checker)]
        with pytest.raises(Forbidden, match="own organisation"):
            tre.review.vote(checker, query_id, True, "Looks fine to me.")
    finally:
        tre.access.revoke_role("demo-university", email, "applicant")
    assert query_id in [item["id"] for item in tre.review.queue(tre.principal("output_checker_1"))]
