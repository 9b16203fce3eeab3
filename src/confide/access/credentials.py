"""Client secrets and bearer tokens: made at random, stored only as hashes, compared in constant
time.

Client secrets are hashed with scrypt (memory-hard, per-secret salt, parameters stored with the
hash so they can be raised later). Bearer tokens carry 256 random bits, so a single SHA-256 is
enough to store them and lets the store find a token by its digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_DKLEN = 32
CLIENT_PREFIX = "cfd-"
TOKEN_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_client_id() -> str:
    return CLIENT_PREFIX + secrets.token_hex(10)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_secret(secret: str, *, n: int | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` for a client secret (cost ``SCRYPT_N`` unless given)."""
    n = n or SCRYPT_N
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=_DKLEN, maxmem=2**26
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches ``stored``; malformed hashes never match."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            secret.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the client id is unknown, so a wrong id costs the same time as a wrong
# secret and the answer does not reveal which clients exist.
_DECOY = hash_secret(secrets.token_urlsafe(16))


def burn_time(secret: str) -> None:
    verify_secret(secret, _DECOY)
