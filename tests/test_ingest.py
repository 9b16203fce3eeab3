"""The backbone's promises at the hub: idempotent, all-or-nothing, authenticated ingest."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from factories import small_extract
from nacl.signing import SigningKey
from pipeline_helpers import hub_rows, make_world, store_fingerprint

from confide.common import canonical
from confide.common.errors import SubmissionRejected
from confide.common.submission import MANIFEST, sign_manifest
from confide.hub.store import sources
from confide.practice import keys


@pytest.fixture
def world(tmp_path, opstore):
    """A pseudonymiser and a hub; the hub's operational store on SQLite, then PostgreSQL."""
    w = make_world(tmp_path / "home")
    yield w
    w.close()


def test_objectors_are_left_out_and_withdrawals_let_people_back(world) -> None:
    extract = small_extract(patients=30, dissent=(1, 2), withdrawn=(3,))
    numbers = extract.table("patients").column("nhs_number").to_pylist()
    world.hub.ingest(world.submit(extract))
    held = {row[0] for row in hub_rows(world.hub, "patients")}
    pseudonyms = world.pseudonymiser.pseudonyms_for(numbers)
    assert pseudonyms[1] not in held and pseudonyms[2] not in held
    assert pseudonyms[3] in held
    assert all(pseudonyms[i] in held for i in range(4, 30))
    events = {row[0] for row in hub_rows(world.hub, "events")}
    assert pseudonyms[1] not in events and pseudonyms[3] in events


def test_reingesting_changes_nothing(world) -> None:
    path = world.submit(small_extract())
    assert world.hub.ingest(path).status == "ingested"
    before = store_fingerprint(world.hub)
    assert world.hub.ingest(path).status == "duplicate"
    assert store_fingerprint(world.hub) == before


def test_a_crash_mid_write_leaves_the_old_snapshot_and_a_retry_matches_a_clean_run(
    world, tmp_path
) -> None:
    first = world.submit(small_extract(patients=20, seed=1))
    world.hub.ingest(first)
    before = store_fingerprint(world.hub)
    rows_before = hub_rows(world.hub, "events")

    second = world.submit(small_extract(patients=35, seed=2))

    def crash(table: str) -> None:
        if table == "events":
            raise KeyboardInterrupt("power cut")

    with pytest.raises(KeyboardInterrupt):
        world.hub.ingest(second, crash_hook=crash)
    assert hub_rows(world.hub, "events") == rows_before
    # The next writer removes the half-written files; the live store is as it was.
    with world.hub.records.writing():
        pass
    assert store_fingerprint(world.hub) == before

    world.hub.ingest(second)
    after_retry = hub_rows(world.hub, "events")

    # A clean run with the same keys (so the same pseudonyms) gives the same rows.
    clean_root = tmp_path / "clean"
    shutil.copytree(
        world.home.root / "pseudonymiser" / "keys", clean_root / "pseudonymiser" / "keys"
    )
    shutil.copytree(world.home.root / "practice", clean_root / "practice")
    clean = make_world(clean_root)
    try:
        clean.hub.enrol("B86001", "practice", keys.verify_key(clean.home, "B86001"))
        clean.hub.ingest(second)
        assert hub_rows(clean.hub, "events") == after_retry
    finally:
        clean.close()


def _resign(path, mutate, key: bytes) -> None:
    manifest = canonical.loads((path / MANIFEST).read_bytes())
    mutate(manifest)
    (path / MANIFEST).write_bytes(canonical.dumps(sign_manifest(manifest, key)))


def test_a_forged_signature_is_rejected_and_the_original_kept(world) -> None:
    path = world.submit(small_extract())
    _resign(path, lambda m: None, bytes(SigningKey.generate()))
    with pytest.raises(SubmissionRejected, match="signature does not match"):
        world.hub.ingest(path)
    assert hub_rows(world.hub, "patients") == []
    kept = list((world.home.root / "hub" / "rejected").glob("*/reason.json"))
    assert len(kept) == 1
    assert "signature" in canonical.loads(kept[0].read_bytes())["reason"]


def test_an_edited_manifest_breaks_the_signature(world) -> None:
    path = world.submit(small_extract())
    manifest = canonical.loads((path / MANIFEST).read_bytes())
    manifest["counts"]["type1_excluded"] = 0
    manifest["counts"]["patients"] = 1
    (path / MANIFEST).write_bytes(canonical.dumps(manifest))
    with pytest.raises(SubmissionRejected, match="signature"):
        world.hub.ingest(path)


def test_a_damaged_or_half_written_upload_is_rejected(world) -> None:
    path = world.submit(small_extract())
    events = path / "events.parquet"
    events.write_bytes(events.read_bytes()[:-100])
    with pytest.raises(SubmissionRejected, match="does not match its signed hash"):
        world.hub.ingest(path)
    (path / MANIFEST).unlink()
    with pytest.raises(SubmissionRejected, match="no manifest"):
        world.hub.ingest(path)


def test_a_truncated_manifest_is_rejected(world) -> None:
    path = world.submit(small_extract())
    raw = (path / MANIFEST).read_bytes()
    (path / MANIFEST).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SubmissionRejected, match="not valid JSON"):
        world.hub.ingest(path)


def test_a_replayed_older_submission_is_refused(world) -> None:
    old = world.submit(small_extract(seed=1))
    new = world.submit(small_extract(seed=2))
    world.hub.ingest(new)
    before = store_fingerprint(world.hub)
    with pytest.raises(SubmissionRejected, match="not newer"):
        world.hub.ingest(old)
    assert store_fingerprint(world.hub) == before


def test_an_unenrolled_source_is_refused(world) -> None:
    path = world.submit(small_extract(source="B86002"))
    with world.hub.ops.engine.begin() as conn:
        conn.execute(sources.delete())
    with pytest.raises(SubmissionRejected, match="not enrolled"):
        world.hub.ingest(path)


def test_invalid_numbers_and_unknown_codes_are_quarantined_with_reasons(world) -> None:
    extract = small_extract(patients=25, bad_numbers=(4,))
    events = extract.tables["events"].to_pylist()
    events[10]["code"] = "12345"  # not a SNOMED CT id
    events[12]["code"] = "44054007"  # wrong check digit
    events[14]["system"] = None  # a coding system Confide does not accept
    import pyarrow as pa

    extract.tables["events"] = pa.Table.from_pylist(events, schema=extract.tables["events"].schema)
    path = world.submit(extract)
    result = world.hub.ingest(path)
    quarantine = pq.read_table(
        world.home.root / "hub" / "submissions" / result.submission_id / "quarantine.parquet"
    ).to_pylist()
    reasons = " | ".join(q["reason"] for q in quarantine)
    assert "modulus 11" in reasons
    assert "check digit is wrong" in reasons
    assert "6 to 18 digits" in reasons
    assert "coding system" in reasons
    # Nothing valid is lost: every other event arrived.
    submitted = pq.read_table(path / "events.parquet").num_rows
    assert result.counts["events"] + sum(q["table"] == "events" for q in quarantine) == submitted


def test_erasure_removes_every_row_of_the_people_named_and_only_theirs(world) -> None:
    gp = small_extract(patients=30, seed=8)
    world.hub.ingest(world.submit(gp))
    trust = small_extract(source="RR8", kind="trust", patients=30, seed=8)
    world.hub.ingest(world.submit(trust))
    numbers = gp.table("patients").column("nhs_number").to_pylist()
    pseudonyms = world.pseudonymiser.pseudonyms_for(numbers)
    leaving = pseudonyms[:5]
    before = {t: hub_rows(world.hub, t) for t in ("patients", "events", "medications")}
    removed = world.hub.erase(leaving)
    assert removed > 0
    for table, rows in before.items():
        after = hub_rows(world.hub, table)
        assert after == [r for r in rows if r[0] not in leaving]
    for path in world.hub.records.folder.rglob("*.parquet"):
        values = set(pq.read_table(path).column("pseudonym").to_pylist())
        assert not values & set(leaving), path
