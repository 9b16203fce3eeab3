"""``confide up``: every party as a child process on loopback, kept running until stopped.

The supervisor starts one ``confide service run PARTY`` per party on consecutive ports from
``base_port``, waits until each answers ``/health``, then writes ``deployment.json`` (see
:mod:`confide.services.deployment`). A child that dies is started again, with backoff, and the
file updated with its new process id. On SIGTERM or SIGINT it stops every child and removes
the file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from confide.common import settings
from confide.common.errors import ConfideError
from confide.common.home import Home
from confide.services import deployment

HOST = "127.0.0.1"
START_TIMEOUT = 90.0  # seconds for every service to answer its health check
# Seconds before each restart of a child that keeps stopping (the first is at once); reset once
# it has run for 30 seconds.
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Child:
    party: str
    port: int
    command: list[str]
    env: dict[str, str]
    user: str | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    failures_in_row: int = 0
    due: float = 0.0  # when a dead child may be started again
    started_at: float = field(default=0.0)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        options: dict[str, Any] = {"user": self.user, "group": self.user} if self.user else {}
        self.process = subprocess.Popen(
            self.command, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True, **options
        )
        self.started_at = time.monotonic()

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def children(
    home: Home,
    base_port: int,
    *,
    users: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    party_env: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Child]:
    ports = {party: base_port + i for i, party in enumerate(deployment.SERVED)}
    peers = {party: f"http://{HOST}:{port}" for party, port in ports.items()}
    env = {**os.environ, **(extra_env or {}), deployment.PEERS_ENV: json.dumps(peers)}
    env.pop(deployment.PARTY_ENV, None)
    made = []
    for party, port in ports.items():
        command = [
            sys.executable, "-m", "confide", "service", "run", party,
            "--home", str(home.root), "--port", str(port), "--host", HOST,
        ]  # fmt: skip
        own = {**env, **(party_env or {}).get(party, {})}
        made.append(Child(party, port, command, own, (users or {}).get(party)))
    return made


# With ``--users``: the OS user each party's service runs as, and the folders it owns. The web
# app runs as the choices registry's user: its identity checks keep their state in the
# registry's own store.
USERS = {
    "ledger": "confide-ledger",
    "choices": "confide-choices",
    "pseudonymiser": "confide-pseudonymiser",
    "hub": "confide-hub",
    "access": "confide-access",
    "web": "confide-choices",
}
OWNED = {
    "ledger": ("ledger", "witness"),
    "choices": ("choices", "web"),
    "pseudonymiser": ("pseudonymiser",),
    "hub": ("hub", "tre", "rollout"),
    "access": ("access",),
}


def separate_users(home: Home) -> dict[str, str]:
    """Create each party's system user if missing and give it its folders (owner-only); the
    user each service runs as. Only root may do this."""
    give_folders_to_users(home)
    if not python_runs_as(USERS["hub"]):
        raise ConfideError(
            "The parties' users cannot run this installation's Python.",
            hint="Install Confide where every user may read it (not under /root), "
            "or leave out --users.",
        )
    return dict(USERS)


def give_folders_to_users(home: Home) -> None:
    """Each party's system user (made if missing) owns that party's folders, owner-only."""
    import pwd

    if os.geteuid() != 0:
        raise ConfideError(
            "Separate users for the parties can only be set up by root.",
            hint="Run `confide up --users` as root, or leave out --users.",
        )
    for user in sorted(set(USERS.values())):
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                check=True,
                capture_output=True,
            )
    os.chmod(home.root, 0o755)  # every service finds its own folder; each is owner-only
    folder = deployment.folder(home)
    os.chmod(folder, 0o755)
    os.chmod(deployment.enrolled_folder(home), 0o755)
    for party, folders in OWNED.items():
        owner = pwd.getpwnam(USERS[party])
        for name in folders:
            path = home.party(name)
            for root, dirs, files in os.walk(path):
                for entry in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
                    os.chown(entry, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
            path.chmod(0o700)


def python_runs_as(user: str) -> bool:
    """Whether ``user`` may run this installation's Python (it may live in root's home)."""
    try:
        done = subprocess.run([sys.executable, "-c", ""], user=user, capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


def write_deployment(home: Home, kids: list[Child]) -> None:
    body = {
        "supervisor_pid": os.getpid(),
        "parties": {
            c.party: {"url": c.url, "pid": c.process.pid if c.process else None} for c in kids
        },
    }
    path = deployment.deployment_file(home)
    tmp = path.with_name(f".deployment.{os.getpid()}.json")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)


def up(
    home: Home,
    base_port: int,
    *,
    users: bool = False,
    extra_env: Mapping[str, str] | None = None,
    started: Callable[[list[Child]], None] | None = None,
) -> None:
    """Run the deployment in the foreground until SIGTERM or SIGINT."""
    if deployment.running(home) is not None:
        raise ConfideError(
            "A deployment is already running for this home.",
            hint="Stop it with `confide down` first, or use `confide services status`.",
        )
    for party in deployment.SERVED:  # every identity made and published before any starts
        deployment.publish(home, party)
    deployment.publish(home, deployment.OPERATOR)
    roles = _database_roles(home, extra_env)  # passwords kept before folders are given away
    owners = separate_users(home) if users else None
    kids = children(home, base_port, users=owners, extra_env=extra_env, party_env=roles)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in kids:
            child.start()
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(kids)
        while waiting and not stopping:
            waiting = [c for c in waiting if not healthy(c.url)]
            dead = [c for c in waiting if c.process is not None and c.process.poll() is not None]
            if dead or time.monotonic() > deadline:
                names = ", ".join(c.party for c in dead or waiting)
                raise ConfideError(
                    f"These services did not start: {names}.",
                    hint="Run `confide service run PARTY --home ... --port N` alone to see why.",
                )
            time.sleep(0.2)
        if stopping:
            return
        write_deployment(home, kids)
        if started is not None:
            started(kids)
        while not stopping:
            if _look_after(kids):
                write_deployment(home, kids)
            time.sleep(0.2)
    finally:
        for child in kids:
            child.stop()
        deployment.deployment_file(home).unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _database_roles(
    home: Home, extra_env: Mapping[str, str] | None
) -> dict[str, dict[str, str]] | None:
    """With PostgreSQL, each service's URL as its own role (when roles may be made here)."""
    url = (extra_env or {}).get(settings.DATABASE_URL.name)
    if not url or not url.startswith("postgresql"):
        return None
    from confide.services.database import role_urls

    found = role_urls(url, home)
    if found is None:
        return None
    return {party: {settings.DATABASE_URL.name: own} for party, own in found.items()}


def _look_after(kids: list[Child]) -> bool:
    """Start again every child that died (after its backoff); True when one was."""
    restarted = False
    now = time.monotonic()
    for child in kids:
        process = child.process
        if process is None or process.poll() is None:
            if process is not None and now - child.started_at > 30:
                child.failures_in_row = 0  # ran long enough: the next death restarts at once
            continue
        if child.due == 0.0:
            step = min(child.failures_in_row, len(BACKOFF)) - 1
            child.due = now + (BACKOFF[step] if step >= 0 else 0.0)
        if now >= child.due:
            child.start()
            child.due = 0.0
            child.failures_in_row += 1
            child.restarts += 1
            restarted = True
    return restarted


def down(home: Home, timeout: float = 30.0) -> bool:
    """Stop the deployment running for ``home``; False when none was running."""
    found = deployment.running(home)
    if found is None:
        return False
    os.kill(int(found["supervisor_pid"]), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while deployment.running(home) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def status(home: Home) -> list[dict[str, Any]]:
    """Each party's URL, process id and health (empty when no deployment runs)."""
    found = deployment.running(home)
    if found is None:
        return []
    return [
        {"party": party, "url": item["url"], "pid": item["pid"], "healthy": healthy(item["url"])}
        for party, item in found["parties"].items()
    ]
