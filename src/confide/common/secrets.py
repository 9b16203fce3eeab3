"""Key files: made on first use, owner-only, never committed, never logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_secret(path: Path, data: bytes) -> None:
    """Write a key atomically with mode 0600, so a crash never leaves half a key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_or_create(path: Path, make: callable) -> bytes:  # type: ignore[valid-type]
    """The key at ``path``, creating it with ``make()`` the first time."""
    if path.exists():
        return path.read_bytes()
    data = make()
    write_secret(path, data)
    return data
