"""Signed requests between parties: who sent it, that it is unchanged, and that it is new.

Each party has an Ed25519 key in its own state folder (``identity.key``, never shared); the
others enrol its public key. A request carries the sender's name, a timestamp, a random nonce
and a signature over the party addressed, the method, path, timestamp, nonce and the body's
SHA-256. The receiver refuses an unknown sender, a bad signature (so also a request signed
for another party), a timestamp outside the allowed skew, and any
nonce it has seen within that window (a replay); having forgotten every nonce when it starts,
it refuses anything signed before it started, so a restart opens no window for replays.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from confide.common.errors import ConfideError
from confide.common.secrets import load_or_create

PARTY, STAMP, NONCE, SIGNATURE = (
    "X-Confide-Party",
    "X-Confide-Timestamp",
    "X-Confide-Nonce",
    "X-Confide-Signature",
)
KEY_FILE = "identity.key"


class RequestRefused(ConfideError):
    """A request between parties that is not signed by an enrolled party, or not new."""


def party_key(folder: Path) -> SigningKey:
    """The party's signing key, made on first use in its own folder (mode 0600)."""
    return SigningKey(load_or_create(folder / KEY_FILE, lambda: secrets.token_bytes(32)))


def _message(to: str, method: str, path: str, stamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((to, method.upper(), path, stamp, nonce, digest)).encode()


@dataclass(frozen=True)
class Signer:
    party: str
    key: SigningKey

    def headers(self, to: str, method: str, path: str, body: bytes) -> dict[str, str]:
        """Headers signing a request to the party ``to`` (no other party accepts them)."""
        stamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = self.key.sign(_message(to, method, path, stamp, nonce, body)).signature
        return {PARTY: self.party, STAMP: stamp, NONCE: nonce, SIGNATURE: signature.hex()}


@dataclass
class Verifier:
    """Checks requests from the parties enrolled with it; remembers nonces to refuse replays."""

    enrolled: dict[str, VerifyKey]
    skew: int = 60
    since: float = field(default_factory=time.time)  # signed before this: not new here
    _seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enrol(self, party: str, public_key: bytes) -> None:
        self.enrolled[party] = VerifyKey(public_key)

    def check(self, to: str, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        """The name of the party that signed this request to ``to``; raises
        :class:`RequestRefused` otherwise."""
        got = {k.lower(): v for k, v in headers.items()}
        party, stamp = got.get(PARTY.lower(), ""), got.get(STAMP.lower(), "")
        nonce, signature = got.get(NONCE.lower(), ""), got.get(SIGNATURE.lower(), "")
        key = self.enrolled.get(party)
        if key is None:
            raise RequestRefused("The request is not from a party enrolled here.")
        try:
            key.verify(_message(to, method, path, stamp, nonce, body), bytes.fromhex(signature))
        except (BadSignatureError, ValueError):
            raise RequestRefused("The request's signature does not match.") from None
        now = time.time()
        if not stamp.isdigit() or abs(now - int(stamp)) > self.skew:
            raise RequestRefused("The request's timestamp is outside the allowed window.")
        if int(stamp) < int(self.since):
            raise RequestRefused("The request was signed before this service started.")
        with self._lock:
            for old in [n for n, t in self._seen.items() if t < now - 2 * self.skew]:
                del self._seen[old]
            if f"{party}:{nonce}" in self._seen:
                raise RequestRefused("The request was seen before: replays are refused.")
            self._seen[f"{party}:{nonce}"] = now
        return party
