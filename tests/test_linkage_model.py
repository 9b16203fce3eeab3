"""The linkage model on synthetic ground truth: each kind of identifier error, one at a time.

The model is trained once, without labels, on a synthetic area's hospital records and people
(as ``confide link`` does); each test then takes a real person, gives their record one error,
and checks whom the record is linked to, if anyone.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from linkage_world import Area, make_area, with_values

from confide.pseudonymiser.linkage import model, records, scoring
from confide.pseudonymiser.linkage.engines import DuckDBEngine
from confide.pseudonymiser.linkage.evaluate import Linked, link_tables


@pytest.fixture(scope="module")
def area() -> Area:
    return make_area(3000, seed=41)


@pytest.fixture(scope="module")
def linked(area: Area) -> Linked:
    return link_tables(area.hospital, area.people)


def decide(linked: Linked, area: Area, record: pa.Table) -> dict:
    mine = records.prepare(record, "patient_id")
    theirs = records.prepare(area.people, "patient_id")
    engine = DuckDBEngine()
    try:
        pairs = scoring.score(engine, linked.trained, mine, theirs)
    finally:
        engine.close()
    return scoring.decide(mine, pairs).to_pylist()[0]


def person(area: Area, where=lambda row: True) -> int:
    """The first person (row of ``area.people``) for whom ``where`` holds."""
    for i, row in enumerate(area.people.to_pylist()):
        if where(row):
            return i
    raise AssertionError("no such person in the area")


def one_digit_wrong(number: str, at: int = 5) -> str:
    return number[:at] + str((int(number[at]) + 3) % 10) + number[at + 1 :]


def swapped_digits(number: str) -> str:
    at = next(i for i in range(3, 8) if number[i] != number[i + 1])
    return number[:at] + number[at + 1] + number[at] + number[at + 2 :]


def test_a_record_with_no_nhs_number_links_on_birth_date_sex_and_postcode(linked, area) -> None:
    i = person(area)
    decision = decide(linked, area, with_values(area.people, i, nhs_number=None))
    assert decision["band"] == "link"
    assert decision["person_id"] == area.people.column("patient_id")[i].as_py()


@pytest.mark.parametrize("error", [one_digit_wrong, swapped_digits])
def test_an_nhs_number_one_edit_wrong_still_links_even_with_no_postcode(
    linked, area, error
) -> None:
    i = person(area, lambda r: r["nhs_number"][3:8] != r["nhs_number"][4] * 5)
    number = area.people.column("nhs_number")[i].as_py()
    record = with_values(area.people, i, nhs_number=error(number), postcode=None)
    decision = decide(linked, area, record)
    assert decision["band"] == "link" and decision["person_id"] == number


def _swappable(row: dict) -> bool:
    _, month, day = row["birth_date"].split("-")
    return int(day) <= 12 and day != month


def test_day_and_month_swapped_in_the_birth_date_still_links(linked, area) -> None:
    i = person(area, _swappable)
    row = area.people.slice(i, 1).to_pylist()[0]
    year, month, day = row["birth_date"].split("-")
    record = with_values(
        area.people,
        i,
        nhs_number=one_digit_wrong(row["nhs_number"]),
        birth_date=f"{year}-{day}-{month}",
    )
    decision = decide(linked, area, record)
    assert decision["band"] == "link" and decision["person_id"] == row["nhs_number"]


def test_a_swapped_birth_date_and_no_nhs_number_points_to_the_right_person(linked, area) -> None:
    """Weaker evidence: the right person comes first, linked or put to a reviewer."""
    i = person(area, _swappable)
    row = area.people.slice(i, 1).to_pylist()[0]
    year, month, day = row["birth_date"].split("-")
    record = with_values(area.people, i, nhs_number=None, birth_date=f"{year}-{day}-{month}")
    decision = decide(linked, area, record)
    assert decision["band"] in ("link", "review") and decision["person_id"] == row["nhs_number"]


def test_a_one_digit_birth_date_typo_with_a_mistyped_nhs_number_still_links(linked, area) -> None:
    i = person(area, lambda r: r["birth_date"][-1] != "9")
    row = area.people.slice(i, 1).to_pylist()[0]
    typo = row["birth_date"][:-1] + str(int(row["birth_date"][-1]) + 1)
    record = with_values(
        area.people, i, nhs_number=one_digit_wrong(row["nhs_number"]), birth_date=typo
    )
    decision = decide(linked, area, record)
    assert decision["band"] == "link" and decision["person_id"] == row["nhs_number"]


def test_an_unknown_old_postcode_and_no_number_is_never_linked_automatically(linked, area) -> None:
    """Date of birth and sex alone do not single anyone out: the record waits."""
    i = person(area)
    record = with_values(area.people, i, nhs_number=None, postcode="YO1 7HH")
    assert decide(linked, area, record)["band"] != "link"


def test_someone_who_is_not_in_the_index_is_not_linked_to_a_lookalike(linked, area) -> None:
    """Same date of birth, sex and postcode district as a real person, but a different
    postcode and no NHS number: not them."""
    i = person(area)
    row = area.people.slice(i, 1).to_pylist()[0]
    district = row["postcode"].split(" ")[0]
    record = with_values(area.people, i, nhs_number=None, postcode=f"{district} 9ZZ")
    assert decide(linked, area, record)["band"] != "link"


def test_two_people_who_match_equally_well_go_to_review_never_to_a_link(linked, area) -> None:
    """Twins: the same date of birth, sex and postcode; the record has no NHS number."""
    i = person(area)
    twin = with_values(area.people, i, patient_id="twin", nhs_number="9434765919")
    people = pa.concat_tables([area.people, twin])
    mine = records.prepare(with_values(area.people, i, nhs_number=None), "patient_id")
    engine = DuckDBEngine()
    try:
        pairs = scoring.score(engine, linked.trained, mine, records.prepare(people, "patient_id"))
    finally:
        engine.close()
    decision = scoring.decide(mine, pairs).to_pylist()[0]
    assert decision["band"] != "link"
    assert decision["probability"] <= 0.5 + 1e-9 and decision["runner_up"] > 0.4


def test_across_the_area_links_are_precise_and_nearly_complete(linked, area) -> None:
    truth = dict(zip(area.hospital.column("patient_id").to_pylist(), area.truth, strict=True))
    right = wrong = 0
    for d in linked.decisions.to_pylist():
        if d["band"] == "link":
            right += d["person_id"] == truth[d["record_id"]]
            wrong += d["person_id"] != truth[d["record_id"]]
    linkable = sum(t in area.registered for t in area.truth)
    precision, recall = right / (right + wrong), right / linkable
    assert precision >= 0.999 and recall >= 0.98
    assert 2 * precision * recall / (precision + recall) >= 0.99


def test_parameters_are_learned_from_the_data_and_ordered_sensibly(linked) -> None:
    levels = {(lv["comparison"], lv["level"]): lv for lv in linked.trained.levels()}

    def weight(comparison: str, level: str) -> float:
        lv = levels[(comparison, level)]
        return math.log2(lv["m"] / lv["u"])

    assert weight("nhs_number", "Exact match on nhs_number") > 10
    assert weight("nhs_number", "One digit wrong or two swapped") > 5
    assert weight("nhs_number", "All other comparisons") < -10
    assert weight("birth_date", "Day and month swapped") > 5
    assert weight("postcode", "Exact match on postcode") > weight("postcode", "Same district")
    assert all(lv["m"] >= model.MIN_PROBABILITY and lv["u"] > 0 for lv in levels.values())
    assert 0.5 < linked.trained.match_share <= 1.0
