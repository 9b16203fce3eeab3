"""The pseudonymiser's keys. Nothing outside this package imports this module.

- ``box.key``: X25519 private key that opens identity batches sealed by practices.
- ``hmac-keys.json``: the HMAC-SHA256 key ring, ``{"current": v, "keys": {v: hex}}``. Rotation
  adds a version and makes it current; older versions stay so earlier people still link (see
  docs/operators.md, "Key rotation").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from nacl.public import PrivateKey

from confide.common.secrets import load_or_create, write_secret


def box_private_key(folder: Path) -> bytes:
    return load_or_create(folder / "keys" / "box.key", lambda: bytes(PrivateKey.generate()))


def box_public_key(folder: Path) -> bytes:
    return bytes(PrivateKey(box_private_key(folder)).public_key)


@dataclass(frozen=True)
class KeyRing:
    current: int
    keys: dict[int, bytes]

    def newest_first(self) -> list[int]:
        return sorted(self.keys, reverse=True)


def _ring_path(folder: Path) -> Path:
    return folder / "keys" / "hmac-keys.json"


def _encode(ring: KeyRing) -> bytes:
    return json.dumps(
        {"current": ring.current, "keys": {str(v): k.hex() for v, k in ring.keys.items()}}
    ).encode()


def load_ring(folder: Path) -> KeyRing:
    def first() -> bytes:
        return _encode(KeyRing(current=1, keys={1: os.urandom(32)}))

    raw = json.loads(load_or_create(_ring_path(folder), first))
    return KeyRing(
        current=int(raw["current"]), keys={int(v): bytes.fromhex(k) for v, k in raw["keys"].items()}
    )


def rotate(folder: Path) -> KeyRing:
    """Add a fresh key and make it current; earlier keys are kept for lookups."""
    ring = load_ring(folder)
    version = max(ring.keys) + 1
    new = KeyRing(current=version, keys={**ring.keys, version: os.urandom(32)})
    write_secret(_ring_path(folder), _encode(new))
    return new


def hmac_many(key: bytes, messages: list[bytes]) -> list[bytes]:
    """HMAC-SHA256 of each message, keying once and copying the keyed state per message."""
    keyed = crypto_hmac.HMAC(key, hashes.SHA256())
    out: list[bytes] = []
    append = out.append
    for message in messages:
        h = keyed.copy()
        h.update(message)
        append(h.finalize())
    return out
