"""Each party's state folder is owner-only, so a process running as another OS user (the hub's,
where the deployment gives each party its own user) cannot read the pseudonymiser's keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from confide.common.home import PARTIES, Home
from confide.pseudonymiser import Pseudonymiser

OTHER_USER = 65534  # nobody

READ = """
import sys
from pathlib import Path
denied, read = [], []
for name in sys.argv[1:]:
    try:
        Path(name).read_bytes()
        read.append(name)
    except PermissionError:
        denied.append(name)
print(len(read), len(denied))
"""


@pytest.fixture
def shared_home():
    """A home whose root any user may traverse: only the party folders keep others out."""
    root = Path(tempfile.mkdtemp(prefix="confide-home-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield Home.at(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as_other_user(paths: list[Path]) -> tuple[int, int]:
    def drop() -> None:
        os.setgid(OTHER_USER)
        os.setuid(OTHER_USER)

    # Debian's own Python: the test's interpreter may sit in a folder only its owner can enter.
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    done = subprocess.run(
        [python, "-I", "-c", READ, *map(str, paths)],
        capture_output=True,
        text=True,
        preexec_fn=drop,
        cwd="/",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    read, denied = map(int, done.stdout.split())
    return read, denied


def test_every_party_folder_is_owner_only_even_if_loosened(shared_home) -> None:
    for name in PARTIES:
        folder = shared_home.party(name)
        folder.chmod(0o755)  # loosened by hand, or by a tool
        assert shared_home.party(name).stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_another_users_process_cannot_read_the_pseudonymisers_keys(shared_home) -> None:
    pseudonymiser = Pseudonymiser.open(shared_home)
    try:
        pseudonymiser.pseudonyms_to_erase(["9434765919"])  # keys and index now exist
    finally:
        pseudonymiser.close()
    folder = shared_home.party("pseudonymiser")
    secrets = sorted(p for p in folder.rglob("*") if p.is_file())
    assert secrets, "the pseudonymiser wrote no key files"
    assert _as_other_user(secrets) == (0, len(secrets))
    # The control: the same process reads a file the home's root holds in the open, so the
    # refusal above is the party folder's doing.
    public = shared_home.root / "readable.txt"
    public.write_text("anyone")
    public.chmod(0o644)
    assert _as_other_user([public]) == (1, 0)
