"""Contributor sketches: two released sets that differ by a few people are found, exactly, and
nothing else is; the same cell asked again is not a difference; counts are compared with
counts and sums with sums of the same value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.tre.cellkey import BUCKETS, record_keys
from confide.tre.differencing import CellSketch, SketchStore, difference, find_overlaps

SECRET = b"differencing-test-secret-0000000"


def sketch(
    people: set[int], *, identity: str = "a", kind: str = "count", release: str = ""
) -> CellSketch:
    counts = np.zeros(BUCKETS, np.int64)
    ids = np.zeros(BUCKETS, np.int64)
    checks = np.zeros(BUCKETS, np.int64)
    for person in people:
        keys = record_keys(SECRET, f"person-{person}")
        for bucket in keys.buckets:
            counts[bucket] += 1
            ids[bucket] ^= keys.sid
            checks[bucket] ^= keys.chk
    return CellSketch(release, f"cell {identity}", len(people), identity, kind, counts, ids, checks)


@settings(max_examples=150, deadline=None)
@given(
    base=st.sets(st.integers(0, 10_000), min_size=0, max_size=400),
    added=st.sets(st.integers(10_001, 20_000), max_size=9),
    removed_count=st.integers(0, 9),
)
def test_a_small_difference_is_recovered_exactly(
    base: set[int], added: set[int], removed_count: int
) -> None:
    removed = set(sorted(base)[:removed_count])
    other = (base - removed) | added
    expected = len(removed) + len(added)
    if expected > 12:
        return
    assert difference(sketch(base), sketch(other)) == expected


@settings(max_examples=60, deadline=None)
@given(size=st.integers(60, 300))
def test_a_large_difference_is_never_mistaken_for_a_small_one(size: int) -> None:
    a, b = set(range(size)), set(range(size, 2 * size))
    found = difference(sketch(a), sketch(b))
    assert found is None or found >= 10


def test_overlaps_are_found_within_an_output_and_against_earlier_releases() -> None:
    earlier = [sketch(set(range(100)), identity="e", release="r1")]
    one_less = sketch(set(range(1, 100)), identity="n1")
    far = sketch(set(range(500, 600)), identity="n2")
    found = find_overlaps([one_less, far], earlier, threshold=10)
    assert [(o.cell, o.other_release, o.people) for o in found] == [("cell n1", "r1", 1)]
    assert "differs from" in found[0].describe() and "by 1 person" in found[0].describe()


def test_the_same_cell_asked_again_is_no_difference_but_the_same_people_elsewhere_is() -> None:
    people = set(range(50))
    again = find_overlaps(
        [sketch(people, identity="same")], [sketch(people, identity="same", release="r")], 10
    )
    assert again == []
    elsewhere = find_overlaps(
        [sketch(people, identity="new")], [sketch(people, identity="old", release="r")], 10
    )
    assert len(elsewhere) == 1 and elsewhere[0].people == 0
    assert "has exactly the people of" in elsewhere[0].describe()


def test_only_like_sets_are_compared() -> None:
    count = sketch(set(range(40)), identity="c", kind="count")
    total = sketch(set(range(1, 40)), identity="s", kind="sum value")
    assert find_overlaps([count, total], [], 10) == []
    assert len(find_overlaps([count, sketch(set(range(1, 40)), identity="d")], [], 10)) == 1


def test_sketches_are_read_back_for_every_project_of_the_organisation(tmp_path: Path) -> None:
    store = SketchStore(tmp_path)
    kept = [sketch(set(range(30)), identity="x", kind="sum v", release="r9")]
    store.save("org-a", "project-1", "r9", kept)
    store.save("org-a", "project-2", "r10", [sketch(set(range(29)), identity="x", release="r10")])
    back = store.load("org-a")
    assert sorted((s.release, s.people) for s in back) == [("r10", 29), ("r9", 30)]
    assert np.array_equal(next(s for s in back if s.release == "r9").ids, kept[0].ids)
    assert store.load("org-b") == []


def test_a_second_project_of_the_organisation_cannot_difference_the_first(
    tmp_path: Path,
) -> None:
    """Project 1 released a cell of 30 people; project 2 of the same organisation asks the same
    cell without one of them: the overlap is found across the two projects."""
    store = SketchStore(tmp_path)
    store.save("org-a", "project-1", "r1", [sketch(set(range(30)), identity="x", release="r1")])
    asked = [sketch(set(range(1, 30)), identity="y")]
    assert len(find_overlaps(asked, store.load("org-a"), 10)) == 1
    assert find_overlaps(asked, store.load("org-b"), 10) == []


def test_a_cell_asked_again_is_kept_once() -> None:
    from confide.tre.differencing import new_sketches

    first = [sketch(set(range(30)), identity="x", release="r1")]
    again = [sketch(set(range(30)), identity="x"), sketch(set(range(31)), identity="x")]
    assert [s.people for s in new_sketches(again, first)] == [31]
