"""The README's step-by-step commands work exactly as written, run by a shell in a new folder.

Two kinds of line cannot run unattended, and the test names them rather than guessing: those
that need the reader's own credentials (a ``...`` placeholder: an access token, an operator's
identity), and ``confide serve``, which runs until stopped (the test starts it, asks it for a
page, and stops it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from loopback import free_port

README = Path(__file__).resolve().parent.parent / "README.md"
NEEDS_TOKEN = " ..."


def step_by_step() -> list[str]:
    """The lines of the code block that follows "Step by step" in the README."""
    text = README.read_text()
    after = text[text.index("Step by step") :]
    block = re.search(r"```\n(.*?)```", after, re.S)
    assert block is not None, "the README's step-by-step block is missing"
    return [line for line in block.group(1).splitlines() if line.strip()]


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "COLUMNS": "200",
    }


def test_the_block_is_found_and_its_unattended_lines_are_named() -> None:
    lines = step_by_step()
    assert lines[0].startswith("confide synth")
    assert [line.split()[1] for line in lines if NEEDS_TOKEN in line] == [
        "usage",
        "access",
        "review",
    ]
    assert [line for line in lines if line.split("#")[0].strip() == "confide serve"]


def test_the_step_by_step_commands_run_as_written(tmp_path: Path) -> None:
    lines = step_by_step()
    runnable = [
        line
        for line in lines
        if NEEDS_TOKEN not in line and line.split("#")[0].strip() != "confide serve"
    ]
    script = "set -euo pipefail\n" + "\n".join(runnable) + "\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Log verified" in done.stdout
    assert (tmp_path / "clean.csv").exists()
    # Nothing the commands changed is left undelivered between parties.
    status = subprocess.run(
        ["confide", "relay", "status", "--json"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    parties = json.loads(status.stdout)
    assert parties["choices"]["delivered"] >= 1 and parties["hub"]["delivered"] >= 1
    assert all(state["pending"] == 0 for state in parties.values())

    # confide serve: it answers, then stops when asked.
    port = free_port()
    server = subprocess.Popen(
        ["confide", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.HTTPError:
                assert server.poll() is None, "confide serve stopped"
                assert time.monotonic() < deadline, "confide serve did not answer"
                time.sleep(0.5)
        assert page.status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
