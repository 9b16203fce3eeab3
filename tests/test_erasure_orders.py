"""Re-ingest never brings back an erased person, whatever the order (choice before upload,
upload before choice, both at once); an erasure is complete only when every store confirmed,
and a crash leaves it pending, visible and finished later. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from factories import small_extract
from pipeline_helpers import WITHOUT_REGISTRY
from typer.testing import CliRunner

from confide.choices.model import Channel, Choice
from confide.cli.main import app
from confide.common.home import Home
from confide.embedded import Installation, close_hub, open_hub
from confide.hub import erasure
from confide.hub.ingest import Hub
from confide.practice import keys
from confide.pseudonymiser import Pseudonymiser


def _submission(home: Home, pseudonymiser_key: bytes, extract, outbox: str = "outbox") -> Path:
    """A fresh signed submission of ``extract`` (each newer than the last from its source)."""
    from confide.practice.minimise import minimise
    from confide.practice.type1 import type1_states
    from confide.practice.writer import write_submission

    done = minimise(extract, type1_states(extract.table("events")))
    _, path = write_submission(
        home.root / outbox,
        ods=extract.source,
        kind=extract.kind,
        identities=done.identities,
        tables=done.tables,
        counts={},
        pseudonymiser_key=pseudonymiser_key,
        signing_key=keys.signing_key(home, extract.source),
    )
    return path


def _enrol(parties: Installation, *extracts) -> None:
    for extract in extracts:
        parties.hub.enrol(
            extract.source, extract.kind, keys.verify_key(parties.home, extract.source)
        )


def _pseudonyms_in_records(hub_folder: Path) -> set[str]:
    found: set[str] = set()
    for path in (hub_folder / "records").rglob("*.parquet"):
        found.update(pq.read_table(path).column("pseudonym").to_pylist())
    return found


def _pseudonyms_in_kept(hub_folder: Path) -> set[str]:
    found: set[str] = set()
    for path in (hub_folder / "submissions").rglob("*.parquet"):
        table = pq.read_table(path)
        if "pseudonym" in table.column_names:
            found.update(p for p in table.column("pseudonym").to_pylist() if p)
    return found


GP = dict(source="B86001", kind="practice", patients=20, seed=31)
TRUST = dict(source="RR8", kind="trust", patients=20, seed=31)


@pytest.fixture
def home(tmp_path, opstore) -> Home:
    return Home.at(tmp_path / "home")


def test_choice_before_upload_even_through_an_unwired_ingest(home) -> None:
    gp, trust = small_extract(**GP), small_extract(**TRUST)
    person = gp.table("patients").column("nhs_number").to_pylist()[0]
    with Installation.open(home) as parties:
        _enrol(parties, gp, trust)
        parties.choices.set(person, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
        ours = parties.pseudonymiser.pseudonyms_for([person])[0]
        assert ours is not None  # minted for the erasure, before any upload
        key = parties.pseudonymiser.public_key()
        parties.hub.ingest(_submission(home, key, gp))
        assert ours not in _pseudonyms_in_records(parties.hub.folder)
    # A hub whose pseudonymiser is told nobody opted out (a stand-in said out loud: there is
    # no such default): the tombstone still keeps them out, from every source.
    hub = Hub(home, Pseudonymiser.open(home, **WITHOUT_REGISTRY))
    try:
        hub.ingest(_submission(home, key, gp))
        result = hub.ingest(_submission(home, key, trust))
        assert result.counts["excluded_as_erased"] == 1
        held = _pseudonyms_in_records(hub.folder)
        assert ours not in held and len(held) == 19
        assert ours not in _pseudonyms_in_kept(hub.folder)
    finally:
        hub.close()
        hub.pseudonymiser.close()


def test_upload_before_choice_then_reingest(home) -> None:
    gp, trust = small_extract(**GP), small_extract(**TRUST)
    person = gp.table("patients").column("nhs_number").to_pylist()[1]
    with Installation.open(home) as parties:
        _enrol(parties, gp, trust)
        key = parties.pseudonymiser.public_key()
        parties.hub.ingest(_submission(home, key, gp))
        parties.hub.ingest(_submission(home, key, trust))
        ours = parties.pseudonymiser.pseudonyms_for([person])[0]
        assert ours in _pseudonyms_in_records(parties.hub.folder)
        parties.choices.set(person, {Choice.SHARE_NOTHING: True}, Channel.LETTER)
        assert ours not in _pseudonyms_in_records(parties.hub.folder)
        assert parties.hub.erasures.pending() == []
        # Newer submissions of both sources, through the wired hub and an unwired one.
        parties.hub.ingest(_submission(home, key, gp))
    hub = open_hub(home)
    try:
        hub.ingest(_submission(home, key, trust))
        hub.ingest(_submission(home, key, gp))
        assert ours not in _pseudonyms_in_records(hub.folder)
        assert ours not in _pseudonyms_in_kept(hub.folder)
    finally:
        close_hub(hub)


def test_a_gp_withdrawal_of_type1_does_not_bring_back_an_online_share_nothing(home) -> None:
    from factories import small_extract as extract_with

    gp = extract_with(**GP)
    person = gp.table("patients").column("nhs_number").to_pylist()[2]
    with Installation.open(home) as parties:
        _enrol(parties, gp)
        key = parties.pseudonymiser.public_key()
        parties.choices.set(person, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
        parties.choices.apply_gp_code(person, True, None)
        parties.choices.apply_gp_code(person, False, None)  # the GP withdraws type 1
        assert parties.choices.current(person).share_nothing
        parties.hub.ingest(_submission(home, key, gp))
        ours = parties.pseudonymiser.pseudonyms_for([person])[0]
        assert ours not in _pseudonyms_in_records(parties.hub.folder)


def test_choice_and_upload_at_the_same_moment(home) -> None:
    """Each round races one share-nothing against one upload that carries the person; the
    person is never left in the hub, whichever thread gets there first."""
    gp = small_extract(**GP)
    numbers = gp.table("patients").column("nhs_number").to_pylist()
    rounds = 6
    with Installation.open(home) as parties:
        _enrol(parties, gp)
        key = parties.pseudonymiser.public_key()
        parties.hub.ingest(_submission(home, key, gp))
        uploads = [_submission(home, key, gp, f"outbox{i}") for i in range(rounds)]
        failures: list[BaseException] = []

        def run(fn) -> None:
            try:
                fn()
            except BaseException as exc:  # a failure in a thread fails the test
                failures.append(exc)

        for i, upload in enumerate(uploads):
            person = numbers[3 + i]
            start = threading.Barrier(2)

            def choose(person: str = person, start: threading.Barrier = start) -> None:
                start.wait()
                parties.choices.set(person, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)

            def upload_it(upload: Path = upload, start: threading.Barrier = start) -> None:
                start.wait()
                parties.hub.ingest(upload)

            threads = [
                threading.Thread(target=run, args=(choose,)),
                threading.Thread(target=run, args=(upload_it,)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not failures, failures
            gone = parties.pseudonymiser.pseudonyms_for(numbers[3 : 4 + i])
            held = _pseudonyms_in_records(parties.hub.folder)
            assert not set(gone) & held, f"round {i}: an erased person is back"
            assert not set(gone) & _pseudonyms_in_kept(parties.hub.folder)
        assert parties.hub.erasures.pending() == []


def test_a_crash_mid_erasure_leaves_it_pending_visible_and_finished_later(
    home, monkeypatch
) -> None:
    gp = small_extract(**GP)
    person = gp.table("patients").column("nhs_number").to_pylist()[4]
    with Installation.open(home) as parties:
        _enrol(parties, gp)
        key = parties.pseudonymiser.public_key()
        parties.hub.ingest(_submission(home, key, gp))
        ours = parties.pseudonymiser.pseudonyms_for([person])[0]

        def crash(_people: set[str]) -> int:
            raise OSError("the disk went away")

        # The relay's clock stands still (ahead of every event written here): the failed
        # request is not retried within this block (a retry would finish it, and the failed
        # pass's steps with it), whatever the machine's load.
        later = datetime.now(UTC) + timedelta(minutes=10)
        parties.relay.clock = lambda: later
        with monkeypatch.context() as patched:
            patched.setattr(parties.hub, "_erase_records", crash)
            parties.choices.set(person, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
        # The choice is recorded; its erasure request waits in the outbox to be retried.
        [waiting] = [p for b in parties.outboxes for p in b.pending()]
        assert waiting.event.kind == "erasure_requested" and waiting.last_error == "OSError"
        (pending,) = parties.hub.erasures.pending()
        assert pending["people"] == 1
        assert set(pending["waiting_for"]) == {
            erasure.RECORDS,
            erasure.KEPT,
            erasure.TRE_CACHE,
            erasure.RELEASES,
        }
        assert ours in _pseudonyms_in_records(parties.hub.folder)  # not erased yet...
        parties.hub.ingest(_submission(home, key, gp))  # ...but never stored again
        assert ours not in _pseudonyms_in_records(parties.hub.folder)
    runner = CliRunner()
    shown = runner.invoke(app, ["hub", "erasures", "--home", str(home.root), "--json"])
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.stdout)
    assert listed["pending_erasures"] == 1 and listed["erased_people"] == 1, shown.stdout
    assert ours not in shown.stdout and person not in shown.stdout
    status = runner.invoke(app, ["hub", "status", "--home", str(home.root), "--json"])
    assert json.loads(status.stdout)["erasures"]["pending_erasures"] == 1
    done = runner.invoke(app, ["hub", "erasures", "--complete", "--home", str(home.root), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["pending"] == []
    hub = open_hub(home)
    try:
        assert ours not in _pseudonyms_in_records(hub.folder)
        assert hub.erasures.counts() == {"erased_people": 1, "pending_erasures": 0}
    finally:
        close_hub(hub)
