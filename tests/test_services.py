"""The ledger served over the RPC layer, in its own state folder, taking another party's
events over signed HTTP on loopback.

The choices registry's relay reaches it through the same ``append_once`` the in-process
ledger offers (a composition whose ledger is a client of the service); events wait in the
outbox while the service is down; unsigned, tampered, stale, unknown and replayed requests
are refused and append nothing.
"""

from __future__ import annotations

import time

import httpx
import pytest
from loopback import free_port, served
from submit_helpers import ledger_kinds

from confide.choices.model import Channel, Choice
from confide.common.home import Home
from confide.composition import Composition
from confide.ledger.log import Ledger
from confide.services import codec
from confide.services.deployment import Transport
from confide.services.rpc import rpc_app
from confide.services.signing import STAMP, Signer, Verifier, party_key


def _ledger_app(ledger: Ledger, verifier: Verifier):
    methods = {"append_once": ledger.append_once, "head": ledger.head}
    return rpc_app("ledger", methods, verifier)


@pytest.fixture
def ledger_service(tmp_path):
    """The ledger party alone, in its own folder, enrolling the choices party's key."""
    ledger_home = Home.at(tmp_path / "ledger-service")
    ledger = Ledger.open(ledger_home)
    verifier = Verifier({})
    choices_folder = Home.at(tmp_path / "parties").party("choices")
    verifier.enrol("choices", bytes(party_key(choices_folder).verify_key))
    port = free_port()
    with served(_ledger_app(ledger, verifier), port) as url:
        yield {"url": url, "ledger": ledger, "port": port, "verifier": verifier}
    ledger.close()


def _signer(tmp_path) -> Signer:
    return Signer("choices", party_key(Home.at(tmp_path / "parties").party("choices")))


def _parties(tmp_path, url: str) -> Composition:
    """The choices party here, the ledger a client of the service at ``url``."""
    transport = Transport({"ledger": url}, _signer(tmp_path))
    return Composition(Home.at(tmp_path / "parties"), transport=transport)


def test_a_choice_reaches_the_ledger_service_over_signed_http(tmp_path, ledger_service):
    with _parties(tmp_path, ledger_service["url"]) as parties:
        parties.choices.set("9990000018", {Choice.NO_RESEARCH: True}, Channel.ONLINE)
        assert all(box.counts()["pending"] == 0 for box in parties.outboxes)
        assert not (tmp_path / "parties" / "ledger").exists()  # no ledger in this home
    assert ledger_kinds(ledger_service["ledger"]) == ["choice_changed"]
    assert not (tmp_path / "ledger-service" / "choices").exists()  # nor choices in the ledger's


def test_with_the_service_down_events_wait_and_are_delivered_when_it_is_back(tmp_path):
    ledger_home = Home.at(tmp_path / "ledger-service")
    ledger = Ledger.open(ledger_home)
    verifier = Verifier({})
    verifier.enrol("choices", bytes(_signer(tmp_path).key.verify_key))
    port = free_port()
    with _parties(tmp_path, f"http://127.0.0.1:{port}") as parties:
        parties.choices.set("9990000018", {Choice.NO_PLANNING: True}, Channel.ONLINE)
        [box] = [b for b in parties.outboxes if b.party == "choices"]
        assert box.counts()["pending"] == 1  # nobody listening: kept, not lost
        with served(_ledger_app(ledger, verifier), port):
            assert parties.relay.drain(timeout=30).pending == 0
    assert ledger_kinds(ledger) == ["choice_changed"]
    ledger.close()


PATH = "/rpc/append_once"


def _entry() -> bytes:
    body = {"commitment": "0" * 64, "set": ["no_research"], "cleared": [], "channel": "online"}
    return codec.dumps({"args": [[("an-event-id", "choice_changed", body)]], "kwargs": {}})


def test_replayed_tampered_unknown_and_stale_requests_are_refused(tmp_path, ledger_service):
    url, signer = ledger_service["url"], _signer(tmp_path)
    body = _entry()
    headers = {"Content-Type": "application/json", **signer.headers("ledger", "POST", PATH, body)}
    first = httpx.post(url + PATH, content=body, headers=headers)
    assert first.status_code == 200
    size = ledger_service["ledger"].head().size

    replay = httpx.post(url + PATH, content=body, headers=headers)
    assert replay.status_code == 401 and "replays" in replay.text
    tampered = httpx.post(url + PATH, content=body.replace(b"online", b"letter"), headers=headers)
    assert tampered.status_code == 401
    stranger = Signer("choices", party_key(tmp_path / "someone-else"))
    forged = httpx.post(
        url + PATH, content=body, headers=stranger.headers("ledger", "POST", PATH, body)
    )
    assert forged.status_code == 401
    unsigned = httpx.post(url + PATH, content=body)
    assert unsigned.status_code == 401
    stale = signer.headers("ledger", "POST", PATH, body)
    stale[STAMP] = str(int(time.time()) - 3600)
    assert httpx.post(url + PATH, content=body, headers=stale).status_code == 401
    # Signed for another method: the path is part of what is signed.
    other = signer.headers("ledger", "POST", "/rpc/head", body)
    assert httpx.post(url + PATH, content=body, headers=other).status_code == 401
    assert ledger_service["ledger"].head().size == size  # none of them appended anything

    # A fresh, signed request for the same event is accepted and adds nothing: idempotent.
    again = httpx.post(
        url + PATH, content=body, headers=signer.headers("ledger", "POST", PATH, body)
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert ledger_service["ledger"].head().size == size


def test_an_entry_of_a_kind_the_sender_does_not_record_is_refused(tmp_path, ledger_service):
    """The choices party records choice changes, not releases: a batch with one appends none."""
    url, signer = ledger_service["url"], _signer(tmp_path)
    size = ledger_service["ledger"].head().size
    body = {"commitment": "0" * 64, "set": ["no_research"], "cleared": [], "channel": "online"}
    items = [
        ("an-event-id", "choice_changed", body),
        ("another-id", "release", {"release_id": "r"}),
    ]
    payload = codec.dumps({"args": [items], "kwargs": {}})
    headers = signer.headers("ledger", "POST", PATH, payload)
    assert httpx.post(url + PATH, content=payload, headers=headers).status_code == 403
    assert ledger_service["ledger"].head().size == size


def test_each_party_keeps_its_identity_key_in_its_own_folder(tmp_path):
    home = Home.at(tmp_path)
    keys = {p: party_key(home.party(p)) for p in ("choices", "hub", "ledger")}
    assert len({bytes(k.verify_key) for k in keys.values()}) == 3
    for party in keys:
        path = home.party(party) / "identity.key"
        assert path.exists() and path.stat().st_mode & 0o077 == 0
