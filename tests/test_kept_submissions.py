"""After ingest the hub keeps what proves what it received (manifest, digests, signature,
counts) and the quarantined rows with their reasons; never sealed identities, accepted rows, or
rows of people who share nothing or were erased."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from factories import small_extract
from identifier_scan import leaks
from test_erasure_orders import _enrol, _submission

from confide.choices.model import Channel, Choice
from confide.common.home import Home
from confide.common.submission import read_manifest, verify_signature
from confide.embedded import Installation
from confide.hub import kept
from confide.practice import keys


def _identifiers(extract) -> set[str]:
    patients = extract.table("patients")
    found = set(patients.column("nhs_number").to_pylist())
    found |= {str(d) for d in patients.column("birth_date").to_pylist() if d}
    found |= {p for p in patients.column("postcode").to_pylist() if p}
    return found


@pytest.fixture
def ingested(tmp_path, opstore):
    home = Home.at(tmp_path / "home")
    gp = small_extract(source="B86001", patients=24, seed=41, bad_numbers=(2,))
    numbers = gp.table("patients").column("nhs_number").to_pylist()
    with Installation.open(home) as parties:
        _enrol(parties, gp)
        parties.choices.set(numbers[5], {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
        result = parties.hub.ingest(_submission(home, parties.pseudonymiser.public_key(), gp))
        yield parties, gp, result


def test_kept_files_hold_proof_and_quarantine_only(ingested) -> None:
    parties, gp, result = ingested
    folder = parties.hub.folder / "submissions" / result.submission_id
    names = {p.name for p in folder.iterdir()}
    assert names <= kept.KEPT_FILES
    assert not any(n.startswith("identities") for n in names)
    # What it received, provable: the source's signature over every file's digest.
    manifest = read_manifest(folder)
    verify_signature(manifest, keys.verify_key(parties.home, gp.source))
    receipt = json.loads((folder / "receipt.json").read_bytes())
    assert (
        receipt["manifest_sha256"]
        == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    )
    assert receipt["counts"]["excluded_by_choice"] == 1
    # Only quarantined rows, each with its reason: here the two events of the one record
    # whose NHS number was mistyped (held until it can be linked).
    quarantine = pq.read_table(folder / "quarantine.parquet")
    events = pq.read_table(folder / "events.parquet")
    assert events.num_rows == 2
    listed = {r["row"] for r in quarantine.to_pylist() if r["table"] == "events"}
    assert set(events.column("row").to_pylist()) == listed
    assert all("held until" in r for r in quarantine.column("reason").to_pylist())
    accepted = sum(
        pq.read_table(parties.hub.folder / "records" / rel).num_rows
        for rel in parties.hub.records.catalog()["sources"][gp.source]["files"].values()
    )
    kept_rows = sum(pq.read_table(p).num_rows for p in folder.glob("*.parquet"))
    assert accepted > 20 * 2 and kept_rows < 10


def test_kept_files_hold_no_identifier(ingested) -> None:
    parties, gp, _result = ingested
    assert leaks(parties.hub.folder / "submissions", _identifiers(gp)) == []


def test_erasure_removes_a_persons_rows_from_kept_files(tmp_path: Path) -> None:
    folder = tmp_path / "submissions" / "s1"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table({"row": [0, 1, 2], "ref": [1, 1, 2], "pseudonym": ["a", "a", None]}),
        folder / "events.parquet",
    )
    pq.write_table(
        pa.table(
            {"table": ["events"] * 3, "row": [0, 1, 2], "reason": ["x"] * 3,
             "pseudonym": ["a", "a", None]}
        ),
        folder / "quarantine.parquet",
    )  # fmt: skip
    assert kept.erase(tmp_path / "submissions", {"a"}) == 4
    assert pq.read_table(folder / "events.parquet").column("row").to_pylist() == [2]
    assert pq.read_table(folder / "quarantine.parquet").num_rows == 1
    assert kept.erase(tmp_path / "submissions", {"a"}) == 0  # again: nothing left to do
