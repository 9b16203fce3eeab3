"""Separate OS users: the hub's process cannot read the pseudonymiser's keys.

``confide up --users`` (as root) gives each party its own system user owning its own folder,
owner-only. These tests check that the hub's user cannot read the pseudonymiser's key file,
neither with a plain read nor in-process through the pseudonymiser's own code, while the
pseudonymiser's user can; and, where that user may run this Python, that each service runs
as its own user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from services_world import deployed

from confide.common.home import Home
from confide.pseudonymiser import keys
from confide.services import deployment
from confide.services.supervisor import USERS, give_folders_to_users, python_runs_as

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="separate OS users can only be made and used as root"
)


@pytest.fixture
def home() -> Iterator[Home]:
    """A home whose parent folders every user may pass through (unlike pytest's own)."""
    parent = Path(tempfile.mkdtemp(prefix="confide-users-", dir="/var/tmp"))
    parent.chmod(0o755)
    try:
        made = Home.at(parent / "home")
        keys.box_public_key(made.party("pseudonymiser"))  # the pseudonymiser's key, made
        for party in deployment.SERVED:
            deployment.publish(made, party)
        give_folders_to_users(made)
        yield made
    finally:
        shutil.rmtree(parent)


def _as(user: str, action) -> int:
    """Run ``action`` in a forked copy of this process, as ``user``; its exit code."""
    entry = pwd.getpwnam(user)
    pid = os.fork()
    if pid == 0:  # the child: drop to the user, then try
        code = 99
        try:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            action()
            code = 0
        except PermissionError:
            code = 13
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_the_hubs_user_cannot_read_the_pseudonymisers_keys(home):
    key = home.root / "pseudonymiser" / "keys" / "box.key"
    identity = home.root / "pseudonymiser" / "identity.key"
    for path in (key, identity):
        denied = subprocess.run(["cat", str(path)], user=USERS["hub"], capture_output=True)
        assert denied.returncode != 0 and b"Permission denied" in denied.stderr
        assert not denied.stdout
        allowed = subprocess.run(
            ["cat", str(path)], user=USERS["pseudonymiser"], capture_output=True
        )
        assert allowed.returncode == 0 and allowed.stdout == path.read_bytes()
    # In-process, through the pseudonymiser's own code, as the hub's user: refused by the OS.
    folder = home.root / "pseudonymiser"
    assert _as(USERS["hub"], lambda: keys.box_private_key(folder)) == 13
    assert _as(USERS["pseudonymiser"], lambda: keys.box_private_key(folder)) == 0
    for party, user in USERS.items():
        if party != "web":
            assert (home.root / party).stat().st_uid == pwd.getpwnam(user).pw_uid
            assert (home.root / party).stat().st_mode & 0o077 == 0


def test_each_service_runs_as_its_own_user(home):
    if not python_runs_as(USERS["hub"]):
        pytest.skip("this machine's Python lives where the parties' users may not run it")
    with deployed(home.root, "--users"):
        found = deployment.running(home)
        assert found is not None
        for party in ("hub", "pseudonymiser"):
            status = Path(f"/proc/{found['parties'][party]['pid']}/status").read_text()
            uid = int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1])
            assert uid == pwd.getpwnam(USERS[party]).pw_uid
