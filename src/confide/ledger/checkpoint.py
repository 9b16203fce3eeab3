"""Signed checkpoints in the C2SP ``tlog-checkpoint`` text format, signed as C2SP signed notes.

A checkpoint is a note whose text is three lines (the log's origin, the tree size in decimal,
the base64 root hash), followed by a blank line and one signature line per signer::

    confide.local/ledger/3f9a0c12
    1024
    6ls1+o2hXv3Jv0Bq1ZXQDh9iFZ5qxqgqvI3h6f0nqfE=

    — confide.local/ledger/3f9a0c12 Az3grl...==

Each signature line is ``— <key name> <base64(key hash || Ed25519 signature)>``, where the key
hash is the first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)`` and the signature
covers the note text up to and including its last newline. Verifier keys are written the
signed-note way: ``<name>+<key hash hex>+<base64(0x01 || public key)>``. Any signed-note
library (Go's ``golang.org/x/mod/sutil/note``, sigsum, Rekor tooling) reads these as they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple, Self

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from confide.common import settings
from confide.common.errors import InvalidInput
from confide.common.secrets import load_or_create, write_secret

ED25519 = 0x01
SIGNATURE_DASH = "\u2014"  # the em dash that starts every signature line
KEY_FILE = "checkpoint-signing.key"
ORIGIN_FILE = "origin.txt"


class CheckpointError(InvalidInput):
    """A checkpoint that is malformed or whose signature does not verify."""


def key_hash(name: str, public_key: bytes, key_type: int = ED25519) -> bytes:
    """The 4-byte key hash (key ID) that names a key in signature lines:
    ``SHA-256(name || 0x0A || type || public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise CheckpointError(
            "A signing key name must be non-empty, with no spaces and no '+' sign."
        )


@dataclass(frozen=True)
class Verifier:
    """A public key that checks signature lines for one key name (signed-note type 0x01:
    the log's own signature; subclasses for other types)."""

    KEY_TYPE: ClassVar[int] = ED25519
    name: str
    public_key: bytes

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key, self.KEY_TYPE)

    @property
    def vkey(self) -> str:
        """The signed-note verifier key string (what auditors pin)."""
        encoded = base64.b64encode(bytes([self.KEY_TYPE]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    @classmethod
    def parse(cls, vkey: str) -> Self:
        """Read a ``name+hash+base64`` verifier key of this type, checking its hash matches."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("A verifier key has the form <name>+<key hash>+<key>.")
        name, hash_hex, encoded = parts
        check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("The verifier key is not valid base64.") from None
        if len(raw) != 33 or raw[0] != cls.KEY_TYPE:
            raise CheckpointError(
                f"Only Ed25519 verifier keys of type 0x{cls.KEY_TYPE:02x} are accepted here."
            )
        verifier = cls(name, raw[1:])
        if verifier.key_hash.hex() != hash_hex.lower():
            raise CheckpointError("The verifier key's hash does not match its public key.")
        return verifier


@dataclass(frozen=True)
class Signer:
    """An Ed25519 signing key with the note key name it signs under."""

    name: str
    seed: bytes

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, bytes(SigningKey(self.seed).verify_key))

    def signature_line(self, text: str) -> str:
        sig = SigningKey(self.seed).sign(text.encode()).signature
        payload = base64.b64encode(self.verifier.key_hash + sig).decode()
        return f"{SIGNATURE_DASH} {self.name} {payload}\n"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the log called ``origin`` had ``size`` entries with head ``root``."""

    origin: str
    size: int
    root: bytes
    text: str

    def as_dict(self) -> dict[str, object]:
        return {"origin": self.origin, "size": self.size, "root": self.root.hex()}


def body(origin: str, size: int, root: bytes) -> str:
    """The note text of a checkpoint (what gets signed)."""
    if "\n" in origin or not origin:
        raise CheckpointError("A log origin is one non-empty line.")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign(signer: Signer, size: int, root: bytes, origin: str | None = None) -> Checkpoint:
    """Sign the tree head; by convention the key name is the log's origin."""
    origin = origin or signer.name
    text = body(origin, size, root)
    return Checkpoint(origin, size, root, text + "\n" + signer.signature_line(text))


class SignatureLine(NamedTuple):
    """One signature line of a note: the signer's key name, its 4-byte key hash, and the rest
    of the signature (for a witness, its timestamp and signature)."""

    name: str
    key_hash: bytes
    signature: bytes


def parse(note: str) -> tuple[Checkpoint, list[SignatureLine]]:
    """Split a checkpoint note into its head and its signature lines."""
    text, sep, sigblock = note.partition("\n\n")
    if not sep or not sigblock.endswith("\n"):
        raise CheckpointError("A checkpoint is note text, a blank line, then signature lines.")
    text += "\n"
    lines = text.splitlines()
    if len(lines) < 3:
        raise CheckpointError("A checkpoint needs an origin line, a size line and a root line.")
    origin, size_line, root_line = lines[:3]
    if not size_line.isdigit() or (size_line.startswith("0") and size_line != "0"):
        raise CheckpointError("The checkpoint's size line is not a decimal number.")
    try:
        root = base64.b64decode(root_line, validate=True)
    except binascii.Error:
        raise CheckpointError("The checkpoint's root line is not base64.") from None
    if len(root) != 32:
        raise CheckpointError("The checkpoint's root hash is not 32 bytes.")
    sigs = []
    for line in sigblock.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != SIGNATURE_DASH:
            raise CheckpointError("A signature line reads '— <key name> <base64 signature>'.")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckpointError("A checkpoint signature is not base64.") from None
        if len(raw) < 5:
            raise CheckpointError("A checkpoint signature is too short.")
        sigs.append(SignatureLine(parts[1], raw[:4], raw[4:]))
    return Checkpoint(origin, int(size_line), root, note), sigs


def signed_text(note: str) -> str:
    """The text a note's signatures cover: everything before the blank line, plus a newline."""
    return note.partition("\n\n")[0] + "\n"


def verify(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint in ``note`` if ``verifier`` signed it; :class:`CheckpointError` if not."""
    checkpoint, lines = parse(note)
    text = signed_text(note)
    for line in lines:
        if line.name != verifier.name or line.key_hash != verifier.key_hash:
            continue  # someone else's signature (a witness, say): not ours to judge
        try:
            VerifyKey(verifier.public_key).verify(text.encode(), line.signature)
        except BadSignatureError:
            raise CheckpointError(
                f"The checkpoint at size {checkpoint.size} carries a signature that does not "
                "verify: the checkpoint was altered or forged."
            ) from None
        return checkpoint
    raise CheckpointError(
        f"The checkpoint at size {checkpoint.size} is not signed by the expected ledger key.",
        hint="Check you pinned the right verifier key for this log.",
    )


def load_signer(folder: Path) -> Signer:
    """The ledger's checkpoint key and origin, created in ``folder`` on first use.

    The origin is ``$CONFIDE_LEDGER_ORIGIN`` when set at first use, else a unique name made up
    then; it never changes afterwards (a new origin is a new log).
    """
    seed = load_or_create(folder / KEY_FILE, lambda: secrets.token_bytes(32))
    origin_path = folder / ORIGIN_FILE
    if origin_path.exists():
        origin = origin_path.read_text().strip()
    else:
        origin = settings.value(settings.LEDGER_ORIGIN.name) or (
            f"confide.local/ledger/{secrets.token_hex(4)}"
        )
        check_name(origin)
        write_secret(origin_path, (origin + "\n").encode())
    if len(seed) != 32:
        raise CheckpointError("The ledger's checkpoint key file is damaged (not 32 bytes).")
    return Signer(origin, seed)
