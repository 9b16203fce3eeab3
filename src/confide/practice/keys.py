"""The source's own signing key (Ed25519), made on first use in the practice's folder."""

from __future__ import annotations

import re

from nacl.signing import SigningKey

from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.common.secrets import load_or_create

_ODS = re.compile(r"^[A-Z0-9]{3,8}$")


def check_ods(ods: str) -> str:
    """ODS codes are 3-8 upper-case letters and digits (``B86001``, ``RR8``)."""
    code = (ods or "").strip().upper()
    if not _ODS.match(code):
        raise InvalidInput(
            f"{ods!r} is not an ODS organisation code (3 to 8 letters and digits, e.g. B86001)."
        )
    return code


def signing_key(home: Home, ods: str) -> bytes:
    """The source's private signing key (32-byte seed)."""
    path = home.party("practice") / check_ods(ods) / "signing.key"
    return load_or_create(path, lambda: bytes(SigningKey.generate()))


def verify_key(home: Home, ods: str) -> bytes:
    """The public half, which the hub enrols for this source."""
    return bytes(SigningKey(signing_key(home, ods)).verify_key)
