"""The witness, as C2SP tlog-witness specifies it: every answer of add-checkpoint, its memory
of each log, the evidence it keeps, and its HTTP API."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.ledger.add_checkpoint import MAX_BODY, MAX_PROOF, SIZE_TYPE, AddCheckpoint
from confide.witness.api import make_app
from confide.witness.service import Witness, WitnessRefusal

LOG = cp.Signer("example.org/log", bytes(range(1, 33)))
LEAVES = [merkle.leaf_hash(b"entry %d" % i) for i in range(64)]


def _note(size: int, leaves: list[bytes] = LEAVES, signer: cp.Signer = LOG) -> str:
    return cp.sign(signer, size, merkle.root_from_leaves(leaves[:size])).text


def _request(old: int, size: int, leaves: list[bytes] = LEAVES, **kw) -> bytes:
    proof = merkle.consistency_proof(old, leaves[:size]) if 0 < old < size else []
    return AddCheckpoint(old, tuple(proof), _note(size, leaves, **kw)).encode()


def _forked(at: int) -> list[bytes]:
    return [*LEAVES[:at], merkle.leaf_hash(b"forged"), *LEAVES[at + 1 :]]


@pytest.fixture
def witness(tmp_path: Path):
    w = Witness.open(tmp_path / "w", name="witness.example.org/w1")
    w.trust(LOG.name, LOG.verifier.vkey)
    yield w
    w.close()


def _refusal(witness: Witness, body: bytes) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal) as caught:
        witness.add_checkpoint(body)
    return caught.value


def test_a_first_checkpoint_is_cosigned_from_old_size_zero(witness) -> None:
    line = witness.add_checkpoint(_request(0, 10))
    cosigned = _note(10) + line
    assert witness.verifier.find(cosigned).witness == "witness.example.org/w1"
    assert witness.store.latest(LOG.name).size == 10


def test_growth_with_a_valid_consistency_proof_is_cosigned(witness) -> None:
    witness.add_checkpoint(_request(0, 10))
    for old, new in ((10, 13), (13, 32), (32, 33), (33, 64)):
        witness.add_checkpoint(_request(old, new))
    assert witness.store.latest(LOG.name).size == 64


def test_the_same_checkpoint_again_is_cosigned_again(witness) -> None:
    witness.add_checkpoint(_request(0, 10))
    witness.add_checkpoint(_request(10, 10))
    assert witness.store.latest(LOG.name).size == 10


def test_an_unknown_origin_is_404(witness) -> None:
    stranger = cp.Signer("elsewhere.example/log", bytes(32))
    assert _refusal(witness, _request(0, 5, signer=stranger)).status == 404


def test_no_trusted_signature_is_403(witness) -> None:
    impostor = cp.Signer(LOG.name, bytes([9]) * 32)  # the log's name, another key
    assert _refusal(witness, _request(0, 5, signer=impostor)).status == 403
    assert witness.store.latest(LOG.name) is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 01\n\n" + _note(3).encode(),
        b"old -1\n\n" + _note(3).encode(),
        b"new 0\n\n" + _note(3).encode(),
        b"old 0\nnot base64!\n\n" + _note(3).encode(),
        b"old 0\nAAAA\n\n" + _note(3).encode(),  # base64, but not a hash
        b"old 0\n\nnot a checkpoint\n",
        b"old 0\n" + b"\xff\xfe\n\n",
        ("old 0\n" + "A" * 43 + "=\n") * 1 + "\n" + _note(3)[:-1],  # note lacks its newline
    ],
)
def test_malformed_requests_are_400(witness, body) -> None:
    body = body if isinstance(body, bytes) else body.encode()
    assert _refusal(witness, body).status == 400


def test_more_than_63_proof_lines_is_400(witness) -> None:
    body = AddCheckpoint(0, tuple([bytes(32)] * (MAX_PROOF + 1)), _note(3)).encode()
    assert _refusal(witness, body).status == 400


def test_an_old_size_above_the_checkpoints_is_400(witness) -> None:
    assert _refusal(witness, AddCheckpoint(9, (), _note(5)).encode()).status == 400


def test_a_wrong_old_size_is_409_with_the_witnesses_size(witness) -> None:
    witness.add_checkpoint(_request(0, 10))
    refusal = _refusal(witness, _request(0, 20))
    assert refusal.status == 409 and refusal.size == 10
    reply = witness.respond(_request(5, 20))
    assert reply.status == 409 and reply.body == "10\n" and reply.content_type == SIZE_TYPE
    assert reply.size == 10


def test_a_rollback_is_refused(witness) -> None:
    witness.add_checkpoint(_request(0, 20))
    assert _refusal(witness, _request(0, 10)).status == 409
    assert _refusal(witness, AddCheckpoint(20, (), _note(10)).encode()).status == 400
    assert witness.store.latest(LOG.name).size == 20


def test_a_split_view_is_caught_and_kept_as_evidence(witness) -> None:
    """Two checkpoints of the same size with different roots, both validly signed by the log:
    the witness cosigns the first it sees and refuses the other, keeping it as proof."""
    witness.add_checkpoint(_request(0, 20))
    other_view = _request(20, 20, _forked(4))
    refusal = _refusal(witness, other_view)
    assert refusal.status == 409 and refusal.size == 20
    (evidence,) = witness.store.evidence(LOG.name)
    assert evidence.reason.startswith("split view")
    assert evidence.request == other_view.decode()
    assert witness.store.latest(LOG.name).root == merkle.root_from_leaves(LEAVES[:20])


def test_a_fork_fails_its_consistency_proof_and_is_kept_as_evidence(witness) -> None:
    witness.add_checkpoint(_request(0, 20))
    forked = _forked(3)
    proof = merkle.consistency_proof(20, forked[:30])  # an honest proof of the forked tree
    body = AddCheckpoint(20, tuple(proof), _note(30, forked)).encode()
    assert _refusal(witness, body).status == 422
    assert witness.store.evidence(LOG.name)[0].reason.startswith("fork")
    assert witness.store.latest(LOG.name).size == 20


def test_a_proof_from_zero_must_be_empty(witness) -> None:
    body = AddCheckpoint(0, (bytes(32),), _note(5)).encode()
    assert _refusal(witness, body).status == 422


def test_unsigned_nonsense_leaves_no_evidence(witness) -> None:
    witness.add_checkpoint(_request(0, 20))
    impostor = cp.Signer(LOG.name, bytes([9]) * 32)
    _refusal(witness, _request(20, 20, _forked(4), signer=impostor))
    assert witness.store.evidence() == []


def test_evidence_is_capped_so_a_log_cannot_fill_the_witnesss_disk(witness, monkeypatch) -> None:
    from confide.witness import store

    monkeypatch.setattr(store, "MAX_EVIDENCE", 3)
    witness.add_checkpoint(_request(0, 20))
    for at in range(6):
        assert witness.respond(_request(20, 20, _forked(at))).status == 409
    assert len(witness.store.evidence(LOG.name)) == 3


def test_the_witness_remembers_across_restarts_and_keeps_its_key(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    with Witness.open(folder, name="witness.example.org/w1") as w:
        w.trust(LOG.name, LOG.verifier.vkey)
        w.add_checkpoint(_request(0, 12))
        key = w.verifier.vkey
    with Witness.open(folder) as again:
        assert again.verifier.vkey == key
        assert again.store.latest(LOG.name).size == 12
    assert (folder / "cosigner.key").stat().st_mode & 0o077 == 0
    with pytest.raises(Exception, match="never changes"):
        Witness.open(folder, name="witness.example.org/renamed")


def test_racing_requests_never_roll_the_witness_back(witness) -> None:
    """The check of the old size and the update are one atomic step: of many requests racing
    from the same old size, exactly one wins and the witness only moves forward."""
    witness.add_checkpoint(_request(0, 8))
    results: list[int] = []

    def submit(size: int) -> None:
        results.append(witness.respond(_request(8, size)).status)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(9, 41)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 1 and set(results) == {200, 409}
    assert witness.store.latest(LOG.name).size in range(9, 41)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["grow", "fork", "stale"]), st.integers(0, 63)),
        min_size=1,
        max_size=12,
    )
)
def test_whatever_it_is_sent_the_witness_only_cosigns_one_growing_history(
    tmp_path_factory, steps
) -> None:
    """Honest growth is always cosigned; a fork or an older size never is; and the witness's
    size never goes down."""
    with Witness.open(tmp_path_factory.mktemp("w")) as witness:
        witness.trust(LOG.name, LOG.verifier.vkey)
        size = 0
        for action, n in steps:
            if action == "grow":
                new = size + n % (64 - size + 1)
                assert witness.respond(_request(size, new)).status == 200
                size = new
            elif action == "fork" and size > 0:
                forked = _forked(n % size)
                proof = merkle.consistency_proof(size, forked[:64]) if size < 64 else []
                reply = witness.respond(
                    AddCheckpoint(size, tuple(proof), _note(64, forked)).encode()
                )
                assert reply.status in (409, 422)
            elif action == "stale" and size > 0:
                reply = witness.respond(_request(0, n % size))
                assert reply.status == 409 and reply.size == size
            latest = witness.store.latest(LOG.name)
            assert (0 if latest is None else latest.size) == size
            if latest is not None:
                assert latest.root == merkle.root_from_leaves(LEAVES[:size])


# --- the HTTP API ---------------------------------------------------------------------------


@pytest.fixture
def api(witness):
    with TestClient(make_app(witness)) as client:
        yield client


def test_http_add_checkpoint_answers_with_cosignature_lines(api, witness) -> None:
    resp = api.post("/add-checkpoint", content=_request(0, 7))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert resp.text.startswith("\u2014 witness.example.org/w1 ") and resp.text.endswith("\n")
    assert witness.verifier.find(_note(7) + resp.text) is not None


def test_http_conflict_carries_the_size_as_text_x_tlog_size(api) -> None:
    api.post("/add-checkpoint", content=_request(0, 7))
    resp = api.post("/add-checkpoint", content=_request(3, 9))
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("text/x.tlog.size")
    assert resp.text == "7\n"


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"garbage", 400), (b"x" * (MAX_BODY + 1), 413)],
)
def test_http_refusals(api, body: bytes, status: int) -> None:
    assert api.post("/add-checkpoint", content=body).status_code == status


def test_http_only_post(api) -> None:
    assert api.get("/add-checkpoint").status_code == 405


# --- the command line -------------------------------------------------------------------------


def test_the_witness_commands(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from confide.cli.main import app

    runner = CliRunner()
    folder = ["--folder", str(tmp_path / "w")]

    def run(*args: str) -> dict:
        result = runner.invoke(app, ["witness", *args, *folder, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    made = run("init", "--name", "witness.example.org/cli")
    assert made["name"] == "witness.example.org/cli" and made["logs"] == []
    assert run("init")["verifier_key"] == made["verifier_key"]  # made once, kept
    watched = run("trust", "--origin", LOG.name, "--key", LOG.verifier.vkey)
    assert watched["logs"][0]["origin"] == LOG.name and watched["logs"][0]["cosigned_size"] is None
    with Witness.open(tmp_path / "w") as w:
        w.add_checkpoint(_request(0, 20))
        w.respond(_request(20, 20, _forked(1)))
    shown = run("show")["logs"][0]
    assert shown["cosigned_size"] == 20 and shown["evidence"] == 1
    (kept,) = run("evidence")["evidence"]
    assert kept["reason"].startswith("split view") and kept["origin"] == LOG.name
    bad = runner.invoke(
        app, ["witness", "trust", "--origin", LOG.name, "--key", "nonsense", *folder]
    )
    assert bad.exit_code == 2
