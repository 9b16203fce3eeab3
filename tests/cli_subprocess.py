"""Run the real ``confide`` command in a subprocess, optionally over a read-only home.

A read-only home is made the way a newcomer meets one: as a user without write permission
(chmod), or, when the tests run as root (who ignores permissions), as a read-only bind mount
inside a private mount namespace (``unshare``), so writes fail with "Read-only file system".
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CONFIDE = [sys.executable, "-m", "confide"]


def run_confide(
    args: Sequence[str],
    *,
    prefix: Sequence[str] = (),
    timeout: float = 120,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``confide ARGS`` as a new process (the tree's code: PYTHONPATH is inherited)."""
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("CONFIDE_DEBUG", None)
    return subprocess.run(
        [*prefix, *CONFIDE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment,
        check=False,
    )


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount --bind -o ro / /mnt 2>/dev/null || true; true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _chmod_tree(root: Path, writable: bool) -> None:
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""]:
            path = Path(folder) / name if name else Path(folder)
            mode = path.stat().st_mode
            bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
            path.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


@contextmanager
def read_only(home: Path) -> Iterator[list[str]]:
    """Make ``home`` read-only for commands run with the yielded prefix."""
    if os.geteuid() != 0:
        _chmod_tree(home, writable=False)
        try:
            yield []
        finally:
            _chmod_tree(home, writable=True)
        return
    if not _unshare_works():
        import pytest

        pytest.skip("running as root without unshare: no way to make a read-only home")
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    yield ["unshare", "-rm", "sh", "-c", script, str(home)]
