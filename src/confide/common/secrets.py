"""Key files: made on first use, owner-only, never committed, never logged."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
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


def load_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The key at ``path``, creating it with ``make()`` the first time.

    Creation links a fully written temporary file into place, which fails if another process
    got there first; the loser then reads the winner's key, so two processes opening a new
    home at once always agree on one key.
    """
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, make())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()
