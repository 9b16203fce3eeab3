"""Checkpoints: the C2SP text format and signed-note signatures, checked from the specs."""

from __future__ import annotations

import base64
import hashlib

import pytest
from nacl.signing import SigningKey

from confide.ledger import checkpoint as cp

ROOT = bytes(range(32))


def _signer(name: str = "example.org/log") -> cp.Signer:
    return cp.Signer(name, bytes(range(1, 33)))


def test_format_is_origin_size_root_blank_signatures() -> None:
    signer = _signer()
    signed = cp.sign(signer, 42, ROOT)
    text, sig_line = signed.text.split("\n\n")
    assert text == f"example.org/log\n42\n{base64.b64encode(ROOT).decode()}"
    dash, name, payload = sig_line.rstrip("\n").split(" ")
    assert dash == "\u2014" and name == "example.org/log"
    raw = base64.b64decode(payload)
    # The key hash, computed here from the signed-note spec.
    public = bytes(SigningKey(signer.seed).verify_key)
    expected_hash = hashlib.sha256(b"example.org/log" + b"\x0a" + b"\x01" + public).digest()[:4]
    assert raw[:4] == expected_hash
    # The signature covers the note text including its final newline, and nothing else.
    SigningKey(signer.seed).verify_key.verify((text + "\n").encode(), raw[4:])


def test_sign_then_verify_round_trip() -> None:
    signer = _signer()
    signed = cp.sign(signer, 7, ROOT)
    got = cp.verify(signed.text, signer.verifier)
    assert (got.origin, got.size, got.root) == ("example.org/log", 7, ROOT)


def test_verifier_key_string_round_trips_and_checks_its_hash() -> None:
    v = _signer().verifier
    name, khash, encoded = v.vkey.split("+", 2)
    assert name == v.name and bytes.fromhex(khash) == v.key_hash
    assert base64.b64decode(encoded) == b"\x01" + v.public_key
    assert cp.Verifier.parse(v.vkey) == v
    with pytest.raises(cp.CheckpointError):
        cp.Verifier.parse(f"{name}+00000000+{encoded}")
    with pytest.raises(cp.CheckpointError):
        cp.Verifier.parse("not a key")


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("\n7\n", "\n8\n"),
        lambda t: t.replace("example.org/log\n7", "example.org/other\n7", 1),
        lambda t: t.replace(base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode()),
    ],
)
def test_any_edit_breaks_the_signature(edit) -> None:
    signer = _signer()
    text = edit(cp.sign(signer, 7, ROOT).text)
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        cp.verify(text, signer.verifier)


def test_someone_elses_key_is_not_accepted() -> None:
    signed = cp.sign(_signer(), 7, ROOT)
    other = cp.Signer("example.org/log", bytes(32))
    with pytest.raises(cp.CheckpointError, match="not signed by the expected"):
        cp.verify(signed.text, other.verifier)


def test_extra_cosignature_lines_are_tolerated() -> None:
    signer, witness = _signer(), cp.Signer("witness.example", bytes([9]) * 32)
    signed = cp.sign(signer, 3, ROOT)
    body = signed.text.split("\n\n")[0] + "\n"
    both = signed.text + witness.signature_line(body)
    assert cp.verify(both, signer.verifier).size == 3
    assert cp.verify(both, witness.verifier).size == 3


@pytest.mark.parametrize(
    "note",
    [
        "no blank line\n1\nAAAA\n",
        "origin\nx1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 k AAAAAAAA\n",
        "origin\n1\nshort\n\n\u2014 k AAAAAAAA\n",
        "origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\n- k AAAAAAAA\n",
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(cp.CheckpointError):
        cp.parse(note)


def test_signer_is_created_once_and_kept(tmp_path) -> None:
    first = cp.load_signer(tmp_path)
    again = cp.load_signer(tmp_path)
    assert first == again
    assert (tmp_path / cp.KEY_FILE).stat().st_mode & 0o077 == 0
    assert first.name.startswith("confide.local/ledger/")
