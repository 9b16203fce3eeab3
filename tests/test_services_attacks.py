"""The parties' services attacked as an adversary on the same machine would: judged by what an
answer reveals or changes, not only by its status.

Each party is served over real HTTP on loopback (its allowlisted methods, over a home's own
parties), and requests are made by hand: unsigned, forged, signed for something else, stale,
replayed (also after a restart and to another party), from a party not allowed a method, with
payloads the codec must refuse, and far too large. A refusal must change nothing, and must say
nothing about what the service holds.
"""

from __future__ import annotations

import base64
import secrets
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pytest
from loopback import served

from confide.choices.model import Channel, Choice
from confide.common.home import Home
from confide.composition import compose
from confide.pseudonymiser import keys
from confide.services import codec, limits, signing
from confide.services.rpc import rpc_app
from confide.services.run import party_methods
from confide.services.signing import Signer, Verifier, party_key

KNOWN = "9990000018"  # a person the choices registry holds
UNKNOWN = "9990000026"  # a valid number it has never heard of
CALLERS = ("hub", "web", "choices", "pseudonymiser", "access", "operator")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict]:
    """Choices, pseudonymiser, access and ledger served over HTTP from one home's parties."""
    home = Home.at(tmp_path / "home")
    keys = {p: party_key(home.party(p) if p != "operator" else tmp_path / "op") for p in CALLERS}
    with compose(home) as parties:
        parties.choices.set(KNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE)
        urls = {}
        with _serve_all(parties, keys, urls):
            yield {
                "home": home,
                "root": tmp_path,
                "parties": parties,
                "urls": urls,
                "signers": {p: Signer(p, k) for p, k in keys.items()},
                "keys": keys,
            }


class _serve_all:
    PARTIES = ("choices", "pseudonymiser", "access", "ledger")

    def __init__(self, parties, keys, urls) -> None:
        self.stack = [
            served(rpc_app(p, party_methods(parties, p), _verifier(keys))) for p in self.PARTIES
        ]
        self.urls = urls

    def __enter__(self):
        for party, server in zip(self.PARTIES, self.stack, strict=True):
            self.urls[party] = server.__enter__()
        return self

    def __exit__(self, *exc):
        for server in reversed(self.stack):
            server.__exit__(None, None, None)


def _verifier(keys) -> Verifier:
    return Verifier({p: k.verify_key for p, k in keys.items()})


def _headers(
    signer: Signer,
    path: str,
    body: bytes,
    *,
    to: str = "choices",
    stamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers signed by ``signer`` for ``path`` and ``body`` sent to the party ``to`` (a
    chosen time and nonce)."""
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    nonce = nonce or secrets.token_hex(16)
    message = signing._message(to, "POST", path, stamp_text, nonce, body)
    return {
        signing.PARTY: signer.party,
        signing.STAMP: stamp_text,
        signing.NONCE: nonce,
        signing.SIGNATURE: signer.key.sign(message).signature.hex(),
    }


def _body(*args, **kwargs) -> bytes:
    return codec.dumps({"args": list(args), "kwargs": kwargs})


def _post(url: str, method: str, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(f"{url}/rpc/{method}", content=body, headers=headers, timeout=30)


def _signed(world, caller: str, party: str, method: str, *args, **kwargs) -> httpx.Response:
    body = _body(*args, **kwargs)
    headers = _headers(world["signers"][caller], f"/rpc/{method}", body, to=party)
    return _post(world["urls"][party], method, body, headers)


def _no_research(world, number: str) -> bool:
    return world["parties"].choices.current(number).as_dict()["no_research"]


# -- who sent it, and what for --------------------------------------------------------------
def test_an_unauthenticated_caller_learns_nothing_about_who_is_known(world):
    """Fact-true vs fact-false: unsigned, forged and unenrolled calls about a person the
    registry holds answer byte for byte as for a person it has never heard of."""
    url = world["urls"]["choices"]
    stranger = Signer("hub", party_key(world["root"] / "stranger"))
    answers = {}
    for number in (KNOWN, UNKNOWN):
        body = _body(number)
        forged = _headers(world["signers"]["hub"], "/rpc/current", body)
        forged[signing.SIGNATURE] = "00" * 64
        attempts = (
            {},
            forged,
            _headers(stranger, "/rpc/current", body),
            _headers(Signer("mallory", stranger.key), "/rpc/current", body),
        )
        answers[number] = [
            (r.status_code, r.content) for r in (_post(url, "current", body, h) for h in attempts)
        ]
    assert answers[KNOWN] == answers[UNKNOWN]
    assert all(status == 401 for status, _ in answers[KNOWN])


def test_an_unauthenticated_caller_cannot_tell_which_methods_exist(world):
    """Whatever party it claims to be, an unsigned caller gets the same refusal for a method
    served, one served only to others, one only an operator may call, and none at all."""
    url = world["urls"]["pseudonymiser"]
    body = _body([KNOWN])
    for party in ("hub", "access", "mallory", ""):
        answers = {
            (r.status_code, r.content)
            for r in (
                _post(url, method, body, {signing.PARTY: party})
                for method in ("pseudonyms_for", "rotate_key", "no_such_method", "__class__")
            )
        }
        assert len(answers) == 1 and next(iter(answers))[0] == 401


def test_a_signature_holds_only_for_its_own_path_and_body(world):
    """Headers signed for a harmless read, put on a write (another path, another body, or
    both), are refused and change nothing."""
    url, hub = world["urls"]["choices"], world["signers"]["hub"]
    read = _body(UNKNOWN)
    headers = _headers(hub, "/rpc/current", read)
    write = _body(UNKNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    assert _post(url, "set", read, headers).status_code == 401  # another path
    assert _post(url, "current", write, headers).status_code == 401  # another body
    assert _post(url, "set", write, headers).status_code == 401  # both
    op = world["signers"]["operator"]
    assert _post(url, "set", write, _headers(op, "/rpc/current", write)).status_code == 401
    assert _no_research(world, UNKNOWN) is False
    assert _post(url, "current", read, headers).status_code == 200  # the genuine one still works


@pytest.mark.parametrize("offset", [-3600, -62, 62, 3600])
def test_a_request_outside_the_time_window_is_refused(world, offset):
    body = _body(UNKNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    stamp = int(time.time()) + offset
    headers = _headers(world["signers"]["operator"], "/rpc/set", body, stamp=stamp)
    assert _post(world["urls"]["choices"], "set", body, headers).status_code == 401
    assert _no_research(world, UNKNOWN) is False


def test_a_malformed_timestamp_or_signature_is_refused(world):
    body = _body(UNKNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    op = world["signers"]["operator"]
    for change in (
        {signing.STAMP: "+1"},
        {signing.STAMP: "-1"},
        {signing.SIGNATURE: "zz"},
        {signing.SIGNATURE: ""},
        {signing.PARTY: ""},
    ):
        headers = {**_headers(op, "/rpc/set", body), **change}
        assert _post(world["urls"]["choices"], "set", body, headers).status_code == 401
    assert _no_research(world, UNKNOWN) is False


def test_a_replayed_write_is_refused_and_applied_once(world):
    url = world["urls"]["choices"]
    body = _body(UNKNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    headers = _headers(world["signers"]["operator"], "/rpc/set", body)
    assert _post(url, "set", body, headers).status_code == 200
    history = len(world["parties"].choices.history(UNKNOWN))
    assert _post(url, "set", body, headers).status_code == 401
    assert len(world["parties"].choices.history(UNKNOWN)) == history


def test_a_request_replayed_after_the_service_restarts_is_refused(world):
    """A request captured a few seconds before the service restarts is still inside the time
    window; the restarted service has forgotten its nonces, yet must refuse it."""
    parties, keys = world["parties"], world["keys"]
    body = _body(UNKNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE)
    captured = _headers(world["signers"]["operator"], "/rpc/set", body, stamp=int(time.time()) - 5)
    with served(rpc_app("choices", party_methods(parties, "choices"), _verifier(keys))) as url:
        assert _post(url, "set", body, captured).status_code == 401  # the restarted service
        assert _no_research(world, UNKNOWN) is False
        fresh = _headers(world["signers"]["operator"], "/rpc/current", _body(UNKNOWN))
        assert _post(url, "current", _body(UNKNOWN), fresh).status_code == 200


def test_a_request_signed_for_one_party_is_refused_by_another(world):
    body = _body(KNOWN)
    # The web may call ``history`` of both parties: only the signature tells them apart.
    headers = _headers(world["signers"]["web"], "/rpc/history", body, to="choices")
    assert _post(world["urls"]["choices"], "history", body, headers).status_code == 200
    assert _post(world["urls"]["access"], "history", body, headers).status_code == 401


# -- what each caller may ask ---------------------------------------------------------------
@pytest.mark.parametrize(
    "method", ["__class__", "__init__", "_private", "close", "store", "__dict__", "set.__self__"]
)
def test_names_outside_the_allowlist_are_not_reachable(world, method):
    response = _signed(world, "operator", "choices", method)
    assert response.status_code in (404, 405)
    assert b"Traceback" not in response.content
    assert _no_research(world, UNKNOWN) is False


def test_a_party_not_allowed_to_call_another_is_refused_before_anything_runs(world):
    """The access party may call only the ledger: asking the pseudonymiser for a known
    person's pseudonym answers as for an unknown one, and reveals none."""
    pseudonymiser = world["parties"].pseudonymiser
    answers = {
        number: _signed(world, "access", "pseudonymiser", "pseudonyms_for", [number])
        for number in (KNOWN, UNKNOWN)
    }
    assert answers[KNOWN].status_code == answers[UNKNOWN].status_code == 403
    assert answers[KNOWN].content == answers[UNKNOWN].content
    size = world["parties"].ledger.head().size
    assert _signed(world, "access", "choices", "set", UNKNOWN, {Choice.NO_RESEARCH: True},
                   Channel.ONLINE).status_code == 403  # fmt: skip
    assert _no_research(world, UNKNOWN) is False
    assert world["parties"].ledger.head().size == size
    assert pseudonymiser.pseudonyms_for([UNKNOWN]) == [None]


def test_only_an_operator_may_rotate_the_pseudonymisers_key(world):
    """Callers were allowed per party, so the web front end (or the hub, or the choices
    registry) could rotate the pseudonymiser's key; now only a person's command may."""
    folder = world["home"].party("pseudonymiser")
    version = keys.load_ring(folder).current
    for caller in ("web", "hub", "choices"):
        assert _signed(world, caller, "pseudonymiser", "rotate_key").status_code == 403
        assert (
            _signed(world, caller, "pseudonymiser", "decide_review", 1, True, "x").status_code
            == 403
        )
    assert keys.load_ring(folder).current == version
    assert _signed(world, "web", "pseudonymiser", "linkage_quality").status_code == 200
    assert _signed(world, "operator", "pseudonymiser", "rotate_key").status_code == 200
    assert keys.load_ring(folder).current == version + 1


def test_only_an_operator_may_have_the_ledger_sign_its_head(world):
    for caller in ("web", "hub", "choices", "access", "pseudonymiser"):
        assert _signed(world, caller, "ledger", "sign_head").status_code == 403
    assert _signed(world, "operator", "ledger", "sign_head").status_code != 403


def test_the_ledger_signs_its_head_for_an_operator(world):
    assert _signed(world, "operator", "ledger", "sign_head").status_code == 200


def test_a_result_that_may_not_cross_is_a_clear_failure_naming_no_value(world, caplog):
    """A method answering with a type the codec refuses (a wiring defect) fails with the
    service's own refusal, and neither the answer nor the log carries the value."""
    secret = f"{KNOWN} Jane Example"
    methods = {"current": lambda *a, **k: object.__new__(type("Leaky", (), {"v": secret}))}
    with served(rpc_app("choices", methods, _verifier(world["keys"]))) as url:
        body = _body(KNOWN)
        response = _post(
            url, "current", body, _headers(world["signers"]["hub"], "/rpc/current", body)
        )
    assert response.status_code == 500 and b"Traceback" not in response.content
    assert "cannot be sent" in response.json()["error"]["message"]
    assert KNOWN not in response.text and KNOWN not in caplog.text and secret not in caplog.text


def test_the_hub_may_not_set_a_choice(world):
    response = _signed(
        world, "hub", "choices", "set", UNKNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE
    )
    assert response.status_code == 403
    assert _no_research(world, UNKNOWN) is False


def test_the_web_may_not_record_another_partys_entries(world):
    size = world["parties"].ledger.head().size
    body = {"commitment": "0" * 64, "set": ["no_research"], "cleared": [], "channel": "online"}
    response = _signed(world, "web", "ledger", "append", "choice_changed", body)
    assert response.status_code == 403
    assert world["parties"].ledger.head().size == size


def test_the_ledger_offers_no_way_to_rewrite_its_history(world):
    head = world["parties"].ledger.head()
    for method in ("rewrite", "truncate", "delete", "replace", "store", "_store", "close"):
        assert _signed(world, "operator", "ledger", method).status_code == 404
    assert world["parties"].ledger.head() == head


# -- what a payload may be ------------------------------------------------------------------
def _raw(world, party: str, method: str, body: bytes) -> httpx.Response:
    headers = _headers(world["signers"]["operator"], f"/rpc/{method}", body, to=party)
    return _post(world["urls"][party], method, body, headers)


def _call(args: bytes) -> bytes:
    """An encoded call whose arguments are the raw JSON ``args``."""
    return b'{"$": "map", "v": [["args", ' + args + b'], ["kwargs", {"$": "map", "v": []}]]}'


def _nested(depth: int) -> bytes:
    return _call(b"[" + b'{"$": "tuple", "v": [' * depth + b"]}" * depth + b"]")


@pytest.mark.parametrize(
    "body",
    [
        _call(orjson.dumps([{"$": "dc", "c": "subprocess:Popen", "v": {"args": ["true"]}}])),
        _call(orjson.dumps([{"$": "enum", "c": "os:system", "v": "true"}])),
        _call(orjson.dumps([{"$": "pickle", "v": "gASVAAAAAAAAAAA="}])),
        _call(orjson.dumps([{"$": "arrow", "v": "QVJST1cxAAAA/////w=="}])),
        _call(orjson.dumps([{"$": "arrow", "v": "not base64 at all!"}])),
        _call(orjson.dumps([{"$": "map", "v": [[{"$": "set", "v": []}, 1]]}])),
        _call(orjson.dumps([{"$": "tuple", "v": 7}])),
        _call(b'"a string"'),
        orjson.dumps({"args": [KNOWN], "kwargs": {}}),  # an untagged map
        orjson.dumps([1, 2]),
        _call(b"[NaN]"),
        _call(b"[Infinity]"),
        _call(b"[1e999]"),
        _call(b'["\xff\xfe"]'),
        b"\x00\x01\x02",
        b"",
        _nested(5000),
    ],
)
def test_a_payload_the_codec_does_not_make_is_refused_cleanly(world, body):
    response = _raw(world, "choices", "current", body)
    assert response.status_code in (422, 500)
    assert b"Traceback" not in response.content and b"File " not in response.content
    assert response.status_code == 422


def test_duplicate_keys_mean_what_the_signed_bytes_say(world):
    """Of duplicated keys the last wins, in the bytes that were signed: the answer is about
    the person the last key names, and nothing else is read or changed."""
    body = _call(b'["' + KNOWN.encode() + b'"]')[:-1] + b', "v": [["args", ["' + UNKNOWN.encode()
    body += b'"]], ["kwargs", {"$": "map", "v": []}]]}'
    response = _raw(world, "choices", "current", body)
    assert response.status_code == 200
    answer = codec.from_plain(orjson.loads(response.content)["result"])
    assert answer == world["parties"].choices.current(UNKNOWN)
    assert answer != world["parties"].choices.current(KNOWN)


@pytest.mark.parametrize("dtype", ["V1000000", "object", "M8[ns]", "c16"])
def test_an_array_of_a_foreign_element_type_is_refused(dtype):
    data = orjson.dumps({"$": "ndarray", "v": [0, 1], "dtype": dtype})
    with pytest.raises(codec.NotEncodable):
        codec.loads(data)


@pytest.mark.parametrize("dtype", ["S1000000", "U1000000"])
def test_an_array_of_strings_is_as_wide_as_its_values_not_as_it_claims(dtype):
    """A few bytes naming a wide element type would make the receiver allocate megabytes to
    gigabytes per element; strings arrive as wide as the longest one sent."""
    back = codec.loads(orjson.dumps({"$": "ndarray", "v": ["0", "1"], "dtype": dtype}))
    assert back.nbytes <= 8 and back.tolist() in (["0", "1"], [b"0", b"1"])


def test_strings_in_an_array_still_cross():
    back = codec.loads(codec.dumps(np.array(["ab", "c"])))
    assert back.tolist() == ["ab", "c"] and back.dtype.kind == "U"


def test_a_crafted_arrow_blob_is_refused_before_anything_reads_it():
    """An Arrow stream whose string offsets point far outside its data reads without a
    complaint; anything then reading the column reads out of bounds and kills the process."""
    offsets = pa.py_buffer(np.array([0, 1 << 30, 2], dtype=np.int32).tobytes())
    column = pa.StringArray.from_buffers(2, offsets, pa.py_buffer(b"ab"))
    sink = pa.BufferOutputStream()
    table = pa.table({"nhs_number": column})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    blob = base64.b64encode(sink.getvalue().to_pybytes()).decode()
    with pytest.raises(codec.NotEncodable):
        codec.loads(orjson.dumps({"$": "arrow", "v": blob}))


def _huge(total: int, sent: list[int]) -> Iterator[bytes]:
    chunk = b"0," * (1 << 19)
    while sent[0] < total:
        part = chunk[: total - sent[0]]
        sent[0] += len(part)
        yield part


@pytest.mark.parametrize("declared", [True, False])
def test_a_200_mb_body_is_refused_without_being_held(world, declared):
    """Unauthenticated, 200 MB: refused with 413 while the service holds at most its bound
    (at once with a declared length; streamed without one, as soon as it passes the bound)."""
    total, sent = 200 * 1024 * 1024, [0]
    headers = {"Content-Length": str(total)} if declared else {}
    tracemalloc.start()
    try:
        response = httpx.post(
            f"{world['urls']['choices']}/rpc/current",
            content=_huge(total, sent),
            headers=headers,
            timeout=120,
        )
        status = response.status_code
    except httpx.TransportError:  # the service hung up on the rest
        status = 413
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert status == 413
    assert peak < limits.max_body() + 32 * 1024 * 1024 < total
    assert _signed(world, "operator", "choices", "current", KNOWN).status_code == 200


def test_a_body_over_the_bound_is_refused_and_one_under_it_is_read(world, monkeypatch):
    monkeypatch.setenv(limits.MAX_BODY_ENV, "1")
    url, op = world["urls"]["choices"], world["signers"]["operator"]
    body = _body(UNKNOWN, {Choice.NO_RESEARCH: True}, Channel.ONLINE, note="x" * (1 << 20))
    assert _post(url, "set", body, _headers(op, "/rpc/set", body)).status_code == 413
    assert _no_research(world, UNKNOWN) is False
    assert _signed(world, "operator", "choices", "current", UNKNOWN).status_code == 200


# -- what an answer may carry ---------------------------------------------------------------
def test_no_answer_carries_a_number_a_pseudonym_a_key_a_path_or_a_traceback(world):
    parties, home = world["parties"], world["home"]
    [pseudonym] = parties.pseudonymiser.pseudonyms_for([KNOWN]) or [None]
    secrets_held = [KNOWN.encode(), str(home.root).encode(), b"Traceback", b'File "']
    secrets_held += [k.encode().hex().encode() for k in world["keys"].values()]
    if pseudonym:
        secrets_held.append(pseudonym.encode())
    url = world["urls"]
    answers = [
        _post(url["choices"], "current", _body(KNOWN), {}),
        _signed(world, "access", "pseudonymiser", "pseudonyms_for", [KNOWN]),
        _signed(world, "operator", "choices", "no_such_method", KNOWN),
        _signed(world, "operator", "choices", "current", KNOWN, "extra", "args"),  # TypeError
        _signed(world, "operator", "choices", "current", "not-a-number-" + KNOWN),
        _raw(world, "choices", "current", b'{"args": ["' + KNOWN.encode() + b'"'),
    ]
    for response in answers:
        assert response.status_code != 200
        for held in secrets_held:
            assert held not in response.content, (response.status_code, held[:12])


# -- where it listens -----------------------------------------------------------------------
def test_the_services_listen_on_loopback_only_by_default(tmp_path):
    import inspect

    from confide.services import cli, supervisor

    assert inspect.signature(cli.run_cmd).parameters["host"].default == "127.0.0.1"
    for child in supervisor.children(Home.at(tmp_path / "home"), 30000):
        assert child.command[child.command.index("--host") + 1] == "127.0.0.1"
        assert child.url.startswith("http://127.0.0.1:")
