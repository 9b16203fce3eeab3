"""Witness cosignatures in the C2SP ``tlog-cosignature`` format (version 1, Ed25519).

A witness that has checked a checkpoint is consistent with everything it saw of that log before
adds one signed-note signature line to it::

    — <witness name> base64(key ID || timestamp || Ed25519 signature)

- key ID: the first 4 bytes of ``SHA-256(name || 0x0A || 0x04 || public key)`` (type 0x04 keeps
  a cosignature from ever being read as the log's own signature, type 0x01);
- timestamp: when it was made, POSIX seconds as a big-endian u64;
- signature: over ``"cosignature/v1\\n" + "time <timestamp>\\n"`` followed by the checkpoint's
  note text (its lines up to the blank line, final newline included).

It states: at that time, this was the largest tree of this log the witness had seen, and it was
consistent with every smaller one. Witness keys are written as signed-note verifier keys with
type 0x04: ``<name>+<key ID hex>+<base64(0x04 || public key)>``. The log, witnesses and
auditors all use this one module, so the three can never disagree on the format.
"""

from __future__ import annotations

import base64
import struct
import time
from dataclasses import dataclass
from typing import ClassVar

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from confide.ledger import checkpoint as cp

COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1\n"
FUTURE_SLACK = 600  # seconds a witness's clock may run ahead before its cosignature is refused
MAX_TIMESTAMP = 2**63 - 1


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 cosigner key."""
    return cp.key_hash(name, public_key, COSIGNATURE_V1)


def signed_message(note: str, timestamp: int) -> bytes:
    """What a v1 cosignature signs: the header, the time line and the checkpoint's note text."""
    return f"{HEADER}time {timestamp}\n{cp.signed_text(note)}".encode()


@dataclass(frozen=True)
class Cosignature:
    """One verified cosignature: who made it, when, and its signature line."""

    witness: str
    timestamp: int
    line: str


@dataclass(frozen=True)
class CosignatureVerifier(cp.Verifier):
    """A witness's public key: checks that witness's cosignatures and ignores everyone else's."""

    KEY_TYPE: ClassVar[int] = COSIGNATURE_V1

    @property
    def key_id(self) -> bytes:
        return self.key_hash

    def find(self, note: str, now: float | None = None) -> Cosignature | None:
        """This witness's cosignature on ``note``: None when it has none; a
        :class:`~confide.ledger.checkpoint.CheckpointError` when a line claims to be this
        witness's but does not verify (forged, or made over another checkpoint)."""
        _, lines = cp.parse(note)
        found: Cosignature | None = None
        for signed in lines:
            if signed.name != self.name or signed.key_hash != self.key_id:
                continue
            stamp = self._check(note, signed.signature, now)
            line = _line(self.name, signed.key_hash + signed.signature)
            if found is None or stamp > found.timestamp:
                found = Cosignature(self.name, stamp, line)
        return found

    def _check(self, note: str, payload: bytes, now: float | None) -> int:
        if len(payload) != 8 + 64:
            raise cp.CheckpointError(f"The cosignature of {self.name} is not 76 bytes long.")
        (stamp,) = struct.unpack(">Q", payload[:8])
        latest = (time.time() if now is None else now) + FUTURE_SLACK
        if stamp > MAX_TIMESTAMP or stamp > latest:
            raise cp.CheckpointError(f"The cosignature of {self.name} is dated in the future.")
        try:
            VerifyKey(self.public_key).verify(signed_message(note, stamp), payload[8:])
        except BadSignatureError:
            raise cp.CheckpointError(
                f"The cosignature of {self.name} does not verify: it was forged or made for "
                "another checkpoint."
            ) from None
        return stamp


@dataclass(frozen=True)
class CosignerKey:
    """A witness's Ed25519 signing key with the name it cosigns under."""

    name: str
    seed: bytes

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, bytes(SigningKey(self.seed).verify_key))

    def cosign(self, note: str, timestamp: int | None = None) -> Cosignature:
        """A cosignature of the checkpoint in ``note``, made now unless ``timestamp`` is given."""
        stamp = int(time.time()) if timestamp is None else timestamp
        sig = SigningKey(self.seed).sign(signed_message(note, stamp)).signature
        payload = self.verifier.key_id + struct.pack(">Q", stamp) + sig
        return Cosignature(self.name, stamp, _line(self.name, payload))


def _line(name: str, payload: bytes) -> str:
    return f"{cp.SIGNATURE_DASH} {name} {base64.b64encode(payload).decode()}\n"


def with_cosignatures(note: str, lines: list[str]) -> str:
    """The note with extra signature lines appended (each once, in the order given)."""
    present = set(note.partition("\n\n")[2].splitlines(keepends=True))
    return note + "".join(line for line in dict.fromkeys(lines) if line not in present)
