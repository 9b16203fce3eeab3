"""Cosignatures follow C2SP tlog-cosignature v1 exactly: checked here from the spec's own words,
byte by byte, not with the module that makes them."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from nacl.signing import SigningKey

from confide.ledger import checkpoint as cp
from confide.ledger import cosignature as cs

ROOT = bytes(range(32))
LOG = cp.Signer("example.org/log", bytes(range(1, 33)))
WITNESS = cs.CosignerKey("witness.example.org/w1", bytes([7]) * 32)


def _note(size: int = 42) -> str:
    return cp.sign(LOG, size, ROOT).text


def test_a_cosignature_line_is_key_id_timestamp_and_signature_over_the_spec_message() -> None:
    note = _note()
    line = WITNESS.cosign(note, timestamp=1679315147).line
    dash, name, payload = line.rstrip("\n").split(" ")
    assert dash == "\u2014" and name == "witness.example.org/w1"
    raw = base64.b64decode(payload)
    assert len(raw) == 4 + 8 + 64
    public = bytes(SigningKey(WITNESS.seed).verify_key)
    # key ID = SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 public key)[:4]
    assert raw[:4] == hashlib.sha256(b"witness.example.org/w1\n\x04" + public).digest()[:4]
    # timestamp: u64, big-endian
    assert raw[4:12] == struct.pack(">Q", 1679315147)
    # signed message: "cosignature/v1\n", "time <ts>\n", then the checkpoint body with its final
    # newline and no signature lines
    body = "example.org/log\n42\n" + base64.b64encode(ROOT).decode() + "\n"
    message = ("cosignature/v1\ntime 1679315147\n" + body).encode()
    SigningKey(WITNESS.seed).verify_key.verify(message, raw[12:])


def test_witness_keys_are_vkeys_of_type_0x04() -> None:
    v = WITNESS.verifier
    name, kid, encoded = v.vkey.split("+", 2)
    assert name == v.name and bytes.fromhex(kid) == v.key_id
    assert base64.b64decode(encoded) == b"\x04" + v.public_key
    assert cs.CosignatureVerifier.parse(v.vkey) == v
    with pytest.raises(cp.CheckpointError):  # a log's key (type 0x01) is not a witness's key
        cs.CosignatureVerifier.parse(LOG.verifier.vkey)
    with pytest.raises(cp.CheckpointError):  # nor the other way round
        cp.Verifier.parse(v.vkey)


def test_a_cosigned_checkpoint_still_verifies_as_the_logs_and_as_the_witnesses() -> None:
    note = _note()
    cosigned = cs.with_cosignatures(note, [WITNESS.cosign(note, 1700000000).line])
    assert cp.verify(cosigned, LOG.verifier).size == 42
    found = WITNESS.verifier.find(cosigned, now=1700000001)
    assert found is not None and found.timestamp == 1700000000
    assert WITNESS.verifier.find(note) is None  # no cosignature, no claim


def test_a_cosignature_moved_to_another_checkpoint_does_not_verify() -> None:
    line = WITNESS.cosign(_note(42), 1700000000).line
    other = cs.with_cosignatures(_note(43), [line])
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        WITNESS.verifier.find(other, now=1700000001)


def test_a_cosignature_with_an_edited_timestamp_does_not_verify() -> None:
    note = _note()
    raw = bytearray(base64.b64decode(WITNESS.cosign(note, 1700000000).line.split(" ")[2]))
    raw[4:12] = struct.pack(">Q", 1700000005)
    line = f"\u2014 {WITNESS.name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        WITNESS.verifier.find(cs.with_cosignatures(note, [line]), now=1700000010)


def test_a_cosignature_dated_in_the_future_is_refused() -> None:
    note = _note()
    later = cs.with_cosignatures(note, [WITNESS.cosign(note, 2_000_000_000).line])
    with pytest.raises(cp.CheckpointError, match="future"):
        WITNESS.verifier.find(later, now=1_900_000_000)


def test_the_logs_own_signature_is_never_read_as_a_cosignature() -> None:
    """Same name and key bytes, but the log signs as type 0x01 and a witness as 0x04: the key
    IDs differ, so a log's signature can never count as a witness's."""
    twin = cs.CosignatureVerifier(LOG.name, LOG.verifier.public_key)
    assert twin.key_id != LOG.verifier.key_hash
    assert twin.find(_note()) is None


def test_the_log_keeps_one_line_per_witness_and_ignores_repeats() -> None:
    note = _note()
    line = WITNESS.cosign(note, 1700000000).line
    twice = cs.with_cosignatures(cs.with_cosignatures(note, [line]), [line, line])
    assert twice.count(line) == 1
