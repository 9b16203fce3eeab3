"""A first step of the multi-service deployment: the ledger as its own service, in its own
state folder, taking other parties' events over signed HTTP on loopback.

The choices registry's relay reaches it through the same ``append_once`` the in-process
ledger offers; unsigned, tampered, stale, unknown and replayed requests are refused.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from loopback import free_port, served
from submit_helpers import ledger_kinds

from confide.choices.model import Channel, Choice
from confide.common.home import Home
from confide.composition import compose
from confide.ledger.log import Ledger
from confide.services.ledger_client import LedgerClient
from confide.services.ledger_service import ledger_app
from confide.services.signing import STAMP, Signer, Verifier, party_key


@pytest.fixture
def ledger_service(tmp_path):
    """The ledger party alone, in its own folder, enrolling the choices party's key."""
    ledger_home = Home.at(tmp_path / "ledger-service")
    ledger = Ledger.open(ledger_home)
    verifier = Verifier({})
    choices_folder = Home.at(tmp_path / "parties").party("choices")
    verifier.enrol("choices", bytes(party_key(choices_folder).verify_key))
    port = free_port()
    with served(ledger_app(ledger, verifier), port) as url:
        yield {"url": url, "ledger": ledger, "port": port, "verifier": verifier}
    ledger.close()


def _signer(tmp_path) -> Signer:
    return Signer("choices", party_key(Home.at(tmp_path / "parties").party("choices")))


def test_a_choice_reaches_the_ledger_service_over_signed_http(tmp_path, ledger_service):
    client = LedgerClient(ledger_service["url"], _signer(tmp_path))
    with compose(Home.at(tmp_path / "parties"), ledger_writer=client) as parties:
        parties.choices.set("9990000018", {Choice.NO_RESEARCH: True}, Channel.ONLINE)
        assert all(box.counts()["pending"] == 0 for box in parties.outboxes)
        assert not (tmp_path / "parties" / "ledger").exists()  # no ledger in this home
    client.close()
    assert ledger_kinds(ledger_service["ledger"]) == ["choice_changed"]
    assert not (tmp_path / "ledger-service" / "choices").exists()  # nor choices in the ledger's


def test_with_the_service_down_events_wait_and_are_delivered_when_it_is_back(tmp_path):
    ledger_home = Home.at(tmp_path / "ledger-service")
    ledger = Ledger.open(ledger_home)
    verifier = Verifier({})
    signer = _signer(tmp_path)
    verifier.enrol("choices", bytes(signer.key.verify_key))
    port = free_port()
    client = LedgerClient(f"http://127.0.0.1:{port}", signer, timeout=2)
    with compose(Home.at(tmp_path / "parties"), ledger_writer=client) as parties:
        parties.choices.set("9990000018", {Choice.NO_PLANNING: True}, Channel.ONLINE)
        [box] = [b for b in parties.outboxes if b.party == "choices"]
        assert box.counts()["pending"] == 1  # nobody listening: kept, not lost
        with served(ledger_app(ledger, verifier), port):
            assert parties.relay.drain(timeout=30).pending == 0
    client.close()
    assert ledger_kinds(ledger) == ["choice_changed"]
    ledger.close()


def _entry() -> bytes:
    body = {"commitment": "0" * 64, "set": ["no_research"], "cleared": [], "channel": "online"}
    return orjson.dumps({"items": [["an-event-id", "choice_changed", body]]})


def test_replayed_tampered_unknown_and_stale_requests_are_refused(tmp_path, ledger_service):
    url, signer = ledger_service["url"], _signer(tmp_path)
    body = _entry()
    headers = {
        "Content-Type": "application/json",
        **signer.headers("ledger", "POST", "/events", body),
    }
    first = httpx.post(f"{url}/events", content=body, headers=headers)
    assert first.status_code == 200
    size = ledger_service["ledger"].head().size

    replay = httpx.post(f"{url}/events", content=body, headers=headers)
    assert replay.status_code == 401 and "replays" in replay.text
    tampered = httpx.post(
        f"{url}/events", content=body.replace(b"online", b"letter"), headers=headers
    )
    assert tampered.status_code == 401
    stranger = Signer("choices", party_key(tmp_path / "someone-else"))
    forged = httpx.post(
        f"{url}/events", content=body, headers=stranger.headers("ledger", "POST", "/events", body)
    )
    assert forged.status_code == 401
    unsigned = httpx.post(f"{url}/events", content=body)
    assert unsigned.status_code == 401
    stale = signer.headers("ledger", "POST", "/events", body)
    stale[STAMP] = str(int(time.time()) - 3600)
    assert httpx.post(f"{url}/events", content=body, headers=stale).status_code == 401
    assert ledger_service["ledger"].head().size == size  # none of them appended anything

    # A fresh, signed request for the same event is accepted and adds nothing: idempotent.
    again = httpx.post(
        f"{url}/events", content=body, headers=signer.headers("ledger", "POST", "/events", body)
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert ledger_service["ledger"].head().size == size


def test_an_entry_of_a_kind_the_sender_does_not_record_is_refused(tmp_path, ledger_service):
    """The choices party records choice changes, not releases: a batch with one appends none."""
    url, signer = ledger_service["url"], _signer(tmp_path)
    size = ledger_service["ledger"].head().size
    items = orjson.loads(_entry())["items"] + [["another-id", "release", {"release_id": "r"}]]
    body = orjson.dumps({"items": items})
    headers = signer.headers("ledger", "POST", "/events", body)
    assert httpx.post(f"{url}/events", content=body, headers=headers).status_code == 403
    assert ledger_service["ledger"].head().size == size


def test_each_party_keeps_its_identity_key_in_its_own_folder(tmp_path):
    home = Home.at(tmp_path)
    keys = {p: party_key(home.party(p)) for p in ("choices", "hub", "ledger")}
    assert len({bytes(k.verify_key) for k in keys.values()}) == 3
    for party in keys:
        path = home.party(party) / "identity.key"
        assert path.exists() and path.stat().st_mode & 0o077 == 0
