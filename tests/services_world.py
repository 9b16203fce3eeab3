"""``confide up`` for a test: every party its own process on loopback, until the block ends."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from confide.common.home import Home
from confide.services import deployment


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports free right now."""
    for _ in range(200):
        base = random.randint(20000, 60000)
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


def wait_for(condition: Callable[[], Any], timeout: float = 120.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("timed out")


@contextlib.contextmanager
def deployed(root: Path, *options: str) -> Iterator[dict[str, Any]]:
    """``confide up`` on ``root`` (this tree's code) until every service answers; stopped, and
    its deployment file gone, when the block ends."""
    home = Home.at(root)
    command = Path(sys.executable).parent / "confide"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("CONFIDE_DATABASE_URL", None)
    base = free_ports(len(deployment.SERVED))
    supervisor = subprocess.Popen(
        [str(command), "up", "--home", str(root), "--base-port", str(base), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: deployment.running(home) or supervisor.poll() is not None, 180)
        if supervisor.poll() is not None:
            pytest.fail(supervisor.stdout.read().decode() if supervisor.stdout else "not up")
        yield {"home": home, "root": root, "supervisor": supervisor, "base": base}
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(60)
    assert not deployment.deployment_file(home).exists()  # removed on the way out
