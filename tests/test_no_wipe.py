"""No bad export can wipe a source: the practice agent refuses an export it cannot read, and
the hub refuses a submission that would remove more than a set share of a source's record
unless an operator confirms it; the store is untouched by every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from factories import small_extract
from hypothesis import given
from hypothesis import strategies as st
from pipeline_helpers import make_world, store_fingerprint
from typer.testing import CliRunner

from confide.cli.main import app
from confide.common import exit_codes
from confide.common.errors import InvalidInput, SubmissionRejected
from confide.hub import shrink
from confide.hub.records import RecordStore
from confide.practice.agent import extract

runner = CliRunner()
UK_CORE = Path(__file__).parent / "fixtures" / "uk-core"
# The start of a JPEG file (SOI, APP0 "JFIF"), then noise: what a mis-pointed export holds.
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(range(256)) * 8


@pytest.fixture
def world(tmp_path, opstore):
    w = make_world(tmp_path / "home")
    yield w
    w.close()


def _jpeg_export(folder: Path, suffix: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "source.json").write_text(json.dumps({"ods": "B86001", "kind": "practice"}))
    for i in range(3):
        (folder / f"part-{i}{suffix}").write_bytes(JPEG)
    return folder


def _hub_log(world) -> list[dict]:
    return [s for s in world.hub.ops.submissions() if s["source"] == "B86001"]


@pytest.mark.parametrize("suffix", [".json", ".ndjson", ".xml"])
def test_an_export_of_jpeg_bytes_is_refused_and_the_store_is_byte_identical(
    world, tmp_path, suffix
) -> None:
    world.hub.ingest(world.submit(small_extract(patients=40)))
    before = store_fingerprint(world.hub)
    folder = _jpeg_export(tmp_path / "export", suffix)
    with pytest.raises(InvalidInput, match="No patient could be read"):
        extract(folder, world.home, world.pseudonymiser.public_key())
    outbox = world.home.party("practice") / "B86001" / "outbox"
    assert not outbox.exists() or not any(outbox.iterdir())
    # What could not be read is kept at the practice, with reasons and original bytes.
    kept = list((world.home.party("practice") / "B86001" / "rejected").glob("refused-*"))
    assert len(kept) == 1
    lines = [json.loads(line) for line in kept[0].read_text().splitlines()]
    assert len(lines) >= 3 and all(line["reason"] for line in lines)
    assert store_fingerprint(world.hub) == before


def test_the_cli_refuses_a_corrupt_export_with_a_clear_error(world, tmp_path) -> None:
    folder = _jpeg_export(tmp_path / "export", ".json")
    home = str(world.home.root)
    result = runner.invoke(app, ["practice", "extract", str(folder), "--home", home])
    assert result.exit_code != 0
    assert "No patient could be read" in result.output
    assert "Traceback" not in result.output


def test_an_export_with_one_good_file_among_bad_ones_is_read(world, tmp_path) -> None:
    folder = _jpeg_export(tmp_path / "export", ".xml")
    shutil.copy(UK_CORE / "UKCore-Patient-RichardSmith-Example.xml", folder / "patient.xml")
    done = extract(folder, world.home, world.pseudonymiser.public_key())
    assert done.counts["patients"] == 1
    assert done.rejected == 3


def test_a_submission_removing_most_of_a_source_is_refused_and_logged(world) -> None:
    world.hub.ingest(world.submit(small_extract(patients=40, seed=1)))
    before = store_fingerprint(world.hub)
    shrunk = world.submit(small_extract(patients=5, seed=1))
    with pytest.raises(SubmissionRejected, match="would shrink its record") as refused:
        world.hub.ingest(shrunk)
    assert "--confirm-shrink" in (refused.value.hint or "")
    assert store_fingerprint(world.hub) == before
    assert [s["status"] for s in _hub_log(world)] == ["ingested", "rejected"]
    assert "would shrink" in _hub_log(world)[-1]["reason"]


def test_an_operator_can_confirm_a_real_shrinkage_and_the_confirmation_is_recorded(
    world,
) -> None:
    world.hub.ingest(world.submit(small_extract(patients=40, seed=1)))
    result = world.hub.ingest(world.submit(small_extract(patients=5, seed=1)), confirm_shrink=True)
    assert result.status == "ingested"
    confirmed = result.details["shrink_confirmed"]
    assert confirmed["patients_before"] == 40 and confirmed["patients_after"] == 5
    logged = _hub_log(world)[-1]
    assert logged["status"] == "ingested"
    assert logged["summary"]["shrink_confirmed"]["max_share"] == pytest.approx(0.2)


def test_the_share_is_twenty_percent_by_default_and_configurable(world, tmp_path) -> None:
    world.hub.ingest(world.submit(small_extract(patients=40, seed=1)))
    # 40 → 32 patients removes exactly 20%: allowed.
    assert world.hub.ingest(world.submit(small_extract(patients=32, seed=1))).status == "ingested"
    # 32 → 25 removes 22%: refused at the default, allowed when the share is set to 25%.
    smaller = world.submit(small_extract(patients=25, seed=1))
    with pytest.raises(SubmissionRejected):
        world.hub.ingest(smaller)
    world.hub.max_shrink = 0.25
    assert world.hub.ingest(smaller).status == "ingested"


def test_growth_and_a_first_submission_are_never_refused(world) -> None:
    world.hub.max_shrink = 0.0
    assert world.hub.ingest(world.submit(small_extract(patients=10))).status == "ingested"
    assert world.hub.ingest(world.submit(small_extract(patients=12))).status == "ingested"


def test_the_cli_refuses_then_accepts_with_confirmation(world) -> None:
    world.hub.ingest(world.submit(small_extract(patients=40, seed=1)))
    shrunk = world.submit(small_extract(patients=5, seed=1))
    before = store_fingerprint(world.hub)
    home = str(world.home.root)
    world.close()
    refused = runner.invoke(app, ["hub", "ingest", str(shrunk), "--home", home])
    assert refused.exit_code == exit_codes.PARTLY_DONE  # one submission of those given refused
    assert "Rejected" in refused.output and "--confirm-shrink" in refused.output
    assert "Traceback" not in refused.output
    as_json = runner.invoke(app, ["hub", "ingest", str(shrunk), "--home", home, "--json"])
    [rejection] = json.loads(as_json.stdout)["rejected"]
    assert "would shrink its record" in rejection["error"]
    assert (
        store_fingerprint(SimpleNamespace(records=RecordStore(Path(home) / "hub" / "records")))
        == before
    )
    bad = runner.invoke(app, ["hub", "ingest", str(shrunk), "--home", home, "--max-shrink", "2"])
    assert bad.exit_code != 0 and "between 0 and 1" in bad.output
    accepted = runner.invoke(
        app, ["hub", "ingest", str(shrunk), "--home", home, "--confirm-shrink", "--json"]
    )
    assert accepted.exit_code == 0, accepted.output
    assert json.loads(accepted.stdout)["ingested"][0]["shrink_confirmed"]["patients_after"] == 5


def test_an_unreadable_share_setting_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(shrink.SHRINK_ENV, "lots")
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        shrink.max_shrink_from_env()
    monkeypatch.setenv(shrink.SHRINK_ENV, "0.5")
    assert shrink.max_shrink_from_env() == 0.5


@given(
    before=st.integers(0, 10_000),
    after=st.integers(0, 10_000),
    share=st.floats(0, 1),
    confirmed=st.booleans(),
)
def test_the_guard_refuses_exactly_when_more_than_the_share_goes(
    before: int, after: int, share: float, confirmed: bool
) -> None:
    measured = shrink.measure({"patients": before}, {"patients": after})
    assert measured is not None
    removed = (before - after) / before if before and after < before else 0.0
    try:
        note = shrink.guard("B86001", "s", measured, share, confirmed)
    except SubmissionRejected:
        assert removed > share and not confirmed
        return
    assert (note is not None) == (removed > share)
