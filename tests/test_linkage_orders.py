"""The person index stays consistent whatever order sources submit in (a property test).

Three practices and two trusts of a small synthetic area arrive in a random order, with a
model fixed beforehand (trained without labels on another area). Whatever the order, every
record that ends up linked (at once, or later when its person arrives) carries its true
person's pseudonym: nobody is split across two pseudonyms, and no two people share one.
"""

from __future__ import annotations

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linkage_world import Area, make_area, sealed
from pipeline_helpers import WITHOUT_REGISTRY

from confide.common.home import Home
from confide.pseudonymiser import Pseudonymiser
from confide.pseudonymiser.linkage.evaluate import link_tables
from confide.pseudonymiser.linkage.training import TrainedModel


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    other = make_area(3000, seed=47)
    return link_tables(other.hospital, other.people).trained


@pytest.fixture(scope="module")
def area() -> Area:
    return make_area(400, seed=53)


def submissions(area: Area) -> list[tuple[str, str, list[int]]]:
    """(source, kind, rows): the people in three practices, the records in two trusts."""
    n, m = area.people.num_rows, area.hospital.num_rows
    thirds = [list(range(k * n // 3, (k + 1) * n // 3)) for k in range(3)]
    halves = [list(range(0, m // 2)), list(range(m // 2, m))]
    return [(f"B8600{k}", "practice", rows) for k, rows in enumerate(thirds)] + [
        (code, "trust", rows) for code, rows in zip(("RR8", "RAE"), halves, strict=True)
    ]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(order=st.permutations(range(5)))
def test_no_person_split_and_no_two_people_merged_in_any_order(trained, area, order) -> None:
    parts = submissions(area)
    with tempfile.TemporaryDirectory() as folder:
        p = Pseudonymiser.open(Home.at(folder), **WITHOUT_REGISTRY)
        try:
            p.linkage.use_model(trained)
            p.linkage.train_automatically = False
            key = p.public_key()
            seen: list[tuple[str, str | None]] = []  # (true NHS number, pseudonym)
            refs: dict[str, list[int]] = {}
            for i in order:
                source, kind, rows = parts[i]
                table = (area.people if kind == "practice" else area.hospital).take(rows)
                truth = (
                    table.column("nhs_number").to_pylist()
                    if kind == "practice"
                    else [area.truth[r] for r in rows]
                )
                refs[source] = rows
                out = p.pseudonymise_submission(source, f"s-{source}", sealed(table, key))
                seen += zip(truth, out.column("pseudonym").to_pylist(), strict=True)
            for r in p.resolutions(0).to_pylist():
                seen.append((area.truth[refs[r["source"]][r["ref"]]], r["pseudonym"]))
            expected = dict(
                zip((t for t, _ in seen), p.pseudonyms_for([t for t, _ in seen]), strict=True)
            )
        finally:
            p.close()
    linked = [(t, ps) for t, ps in seen if ps is not None]
    assert linked
    for true_number, pseudonym in linked:
        assert pseudonym == expected[true_number]
    people_per_pseudonym: dict[str, set[str]] = {}
    for true_number, pseudonym in linked:
        people_per_pseudonym.setdefault(pseudonym, set()).add(true_number)
    assert all(len(people) == 1 for people in people_per_pseudonym.values())
