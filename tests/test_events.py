"""Cross-party events are durable: written with the change, delivered at least once, retried
after a failure, and logged once however often they are delivered."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from factories import small_extract
from hypothesis import given
from hypothesis import strategies as st
from submit_helpers import confide, ledger_kinds, pseudonyms_in_hub, write_extract

from confide.choices import store as choices_store
from confide.choices.model import ChangeRequest, Channel, Choice
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.composition import compose
from confide.events.outbox import Backoff
from confide.events.types import (
    ChoiceChanged,
    ErasureRequested,
    ProjectDecided,
    SubmissionIngested,
    event_from_row,
)


@pytest.fixture
def parties(tmp_path, opstore):
    with compose(Home.at(tmp_path)) as composed:
        yield composed


def _choices_outbox(parties):
    return next(box for box in parties.outboxes if box.party == "choices")


def test_a_change_and_its_events_commit_together(parties) -> None:
    with pytest.raises(InvalidInput):
        parties.choices.bulk_set(
            [
                ChangeRequest("9990000018", {Choice.SHARE_NOTHING: True}, Channel.ONLINE),
                ChangeRequest("not-a-number", {Choice.SHARE_NOTHING: True}, Channel.ONLINE),
            ]
        )
    with parties.choices.engine.connect() as conn:
        assert conn.execute(choices_store.outbox.select()).all() == []
    event = parties.choices.set("9990000018", {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
    with parties.choices.engine.connect() as conn:
        rows = conn.execute(choices_store.outbox.select()).all()
    assert [r.kind for r in rows] == ["choice_changed", "erasure_requested"]
    assert {r.body["change_id"] for r in rows} == {event.change_id}
    assert all(r.delivered_at is not None for r in rows)  # the in-process relay ran at once


def test_a_hub_failure_during_erasure_leaves_it_pending_and_it_is_retried(parties, tmp_path):
    gp = small_extract(patients=20, seed=5)
    parties.hub.ingest(write_extract(parties, gp))
    leaving = gp.table("patients").column("nhs_number").to_pylist()[0]
    pseudonym = parties.pseudonymiser.pseudonyms_for([leaving])[0]
    assert pseudonym in pseudonyms_in_hub(parties.hub.folder)

    real_erase, calls = parties.hub.erase_everywhere, []

    def failing_erase(pseudonyms, **options):
        calls.append(len(pseudonyms))
        raise OSError("the record store's disk went away")

    parties.hub.erase_everywhere = failing_erase
    parties.choices.set(leaving, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
    assert calls == [1]
    assert pseudonym in pseudonyms_in_hub(parties.hub.folder)  # not erased yet ...
    [waiting] = _choices_outbox(parties).pending()
    assert isinstance(waiting.event, ErasureRequested)  # ... but not lost either
    assert waiting.attempts == 1 and waiting.last_error == "OSError"
    assert "erasure" not in ledger_kinds(parties.ledger)
    assert parties.deliver().delivered == 0  # backing off: not due yet

    parties.hub.erase_everywhere = real_erase
    parties.close()  # a restart: the next process finds the request and completes it
    done = confide("relay", "run", "--home", str(tmp_path), "--json", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pending"] == 0
    with compose(Home.at(tmp_path)) as again:
        assert pseudonym not in pseudonyms_in_hub(again.hub.folder)
        assert ledger_kinds(again.ledger).count("erasure") == 1


def test_events_delivered_twice_are_logged_once(parties) -> None:
    parties.choices.set("9990000018", {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    size = parties.ledger.head().size
    assert ledger_kinds(parties.ledger).count("choice_changed") == 1
    box = _choices_outbox(parties)
    # A crash after the ledger appended but before the outbox was marked: delivered again.
    with box.engine.begin() as conn:
        conn.execute(box.table.update().values(delivered_at=None))
    assert parties.deliver().delivered == 1
    assert parties.ledger.head().size == size
    assert box.counts() == {"delivered": 1, "pending": 0}


def test_a_failing_receiver_holds_back_later_events_of_its_outbox(parties) -> None:
    """Order is kept: a choice made after a failed one waits behind it."""
    real = parties.relay.handlers[ChoiceChanged]
    parties.relay.handlers[ChoiceChanged] = lambda events: (_ for _ in ()).throw(OSError())
    parties.choices.set("9990000018", {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    parties.choices.set("9990000018", {Choice.NO_PLANNING: True}, Channel.ONLINE)
    assert [p.attempts for p in _choices_outbox(parties).pending()] == [1, 0]
    parties.relay.handlers[ChoiceChanged] = real
    parties.relay.clock = lambda: _later(minutes=10)
    assert parties.deliver().delivered == 2
    assert ledger_kinds(parties.ledger).count("choice_changed") == 2


def _later(**delta):
    from datetime import UTC, datetime

    return datetime.now(UTC) + timedelta(**delta)


def test_backoff_doubles_and_is_capped() -> None:
    backoff = Backoff(timedelta(seconds=1), timedelta(seconds=30))
    assert [backoff.after(n).total_seconds() for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


_tokens = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)


@given(
    st.one_of(
        st.builds(
            ChoiceChanged, _tokens, _tokens, _tokens, st.tuples(_tokens), st.tuples(), _tokens
        ),
        st.builds(ErasureRequested, _tokens, _tokens, _tokens),
        st.builds(
            SubmissionIngested,
            _tokens,
            _tokens,
            _tokens,
            _tokens,
            st.integers(0, 10**9),
            st.integers(0, 10**9),
        ),
        st.builds(ProjectDecided, _tokens, _tokens, _tokens, _tokens, _tokens, _tokens),
    )
)
def test_every_event_reads_back_as_the_event_written(event) -> None:
    stored = json.loads(json.dumps(event.body()))  # as the outbox's JSON column keeps it
    assert event_from_row(event.kind, event.event_id, stored) == event


def test_an_unknown_kind_is_an_error_never_skipped() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        event_from_row("something_else", "x", {})


def test_an_ingest_whose_outcome_was_lost_in_a_crash_is_announced_when_seen_again(parties):
    folder = write_extract(parties, small_extract(patients=10, seed=9))
    real_record = parties.hub.ops.record

    def crash(*args, **kwargs):
        raise SystemExit("killed after the record store's commit")

    parties.hub.ops.record = crash
    with pytest.raises(SystemExit):
        parties.hub.ingest(folder)
    parties.hub.ops.record = real_record
    assert "submission_ingested" not in ledger_kinds(parties.ledger)
    assert parties.hub.ingest(folder).status == "duplicate"
    assert parties.hub.ingest(folder).status == "duplicate"
    assert ledger_kinds(parties.ledger).count("submission_ingested") == 1


def test_the_serving_app_retries_pending_events_in_the_background(parties) -> None:
    import time

    from fastapi.testclient import TestClient

    from confide.web.cli import installation_app

    real = parties.relay.handlers[ChoiceChanged]
    parties.relay.handlers[ChoiceChanged] = lambda events: (_ for _ in ()).throw(OSError())
    parties.choices.set("9990000018", {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    assert _choices_outbox(parties).counts()["pending"] == 1
    parties.relay.handlers[ChoiceChanged] = real
    app = installation_app(parties, demo=False, relay_every=0.2)
    with TestClient(app, base_url="https://testserver"):
        deadline = time.monotonic() + 20
        while _choices_outbox(parties).counts()["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)  # nobody asks: the app's own relay retries after the backoff
    assert _choices_outbox(parties).counts()["pending"] == 0
    assert ledger_kinds(parties.ledger).count("choice_changed") == 1


def test_an_erasure_retried_after_the_ledger_failed_leaves_no_erasure_pending(parties) -> None:
    """The hub erased, then the ledger failed: the retry is a new pass at the hub, and the
    first pass's steps outside the hub are finished with it, not left pending for ever."""
    gp = small_extract(patients=20, seed=5)
    parties.hub.ingest(write_extract(parties, gp))
    leaving = gp.table("patients").column("nhs_number").to_pylist()[0]
    real, failures = parties.ledger.append_once, []

    def failing_once(items):
        items = list(items)
        if not failures and any(kind == "erasure" for _key, kind, _body in items):
            failures.append(1)
            raise OSError("the ledger's disk went away")
        return real(items)

    parties.ledger.append_once = failing_once
    parties.choices.set(leaving, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
    assert failures and _choices_outbox(parties).counts()["pending"] == 1
    parties.relay.clock = lambda: _later(minutes=10)
    assert parties.deliver().delivered == 1
    assert parties.hub.erasures.pending() == []
    assert ledger_kinds(parties.ledger).count("erasure") == 1
