"""The pseudonymiser: stable keyed pseudonyms, linkage across sources, key rotation."""

from __future__ import annotations

import hashlib

import pytest
from factories import small_extract
from pipeline_helpers import hub_rows, make_world


@pytest.fixture
def world(tmp_path):
    w = make_world(tmp_path)
    yield w
    w.close()


def _numbers(extract) -> list[str]:
    return extract.table("patients").column("nhs_number").to_pylist()


def test_pseudonyms_are_keyed_not_plain_hashes(world) -> None:
    gp = small_extract(patients=50, seed=3)
    world.hub.ingest(world.submit(gp))
    found = world.pseudonymiser.pseudonyms_for(_numbers(gp))
    assert None not in found and len(set(found)) == 50
    for number, pseudonym in zip(_numbers(gp), found, strict=True):
        for unkeyed in (hashlib.sha256, hashlib.md5, hashlib.sha1):
            assert pseudonym not in unkeyed(number.encode()).hexdigest()


def test_unknown_and_invalid_numbers_have_no_pseudonym(world) -> None:
    assert world.pseudonymiser.pseudonyms_for(["9434765919", "123", "9434765918"]) == [
        None,
        None,
        None,
    ]


def test_same_person_links_across_sources_and_survives_key_rotation(world) -> None:
    gp = small_extract(source="B86001", patients=30, seed=5)
    world.hub.ingest(world.submit(gp))
    before = world.pseudonymiser.pseudonyms_for(_numbers(gp))

    world.pseudonymiser.rotate_key()
    assert world.pseudonymiser.pseudonyms_for(_numbers(gp)) == before

    # A trust submits the same people after the rotation: they link to the same persons.
    trust = small_extract(source="RR8", kind="trust", patients=30, seed=5)
    world.hub.ingest(world.submit(trust))
    by_source: dict[str, set[str]] = {}
    for row in hub_rows(world.hub, "patient_sources"):
        by_source.setdefault(row[1], set()).add(row[0])
    assert by_source["B86001"] == by_source["RR8"] == set(before)

    # People first seen under the new key keep their pseudonyms through a further rotation.
    newcomers = small_extract(source="B86002", patients=20, seed=6)
    world.hub.ingest(world.submit(newcomers))
    fresh = world.pseudonymiser.pseudonyms_for(_numbers(newcomers))
    world.pseudonymiser.rotate_key()
    assert world.pseudonymiser.pseudonyms_for(_numbers(newcomers)) == fresh
    assert world.pseudonymiser.pseudonyms_for(_numbers(gp)) == before


def test_an_index_held_by_another_process_gives_a_clear_error(tmp_path) -> None:
    import subprocess
    import sys
    import time

    from confide.common.errors import InUse
    from confide.pseudonymiser.index import PersonIndex

    path = tmp_path / "index.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
         "print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        with pytest.raises(InUse, match="another Confide process") as caught:
            while time.monotonic() < deadline:
                PersonIndex(path).close()  # raises once the other process holds the lock
        assert "confide serve" in caught.value.message
    finally:
        holder.kill()
        holder.wait()
