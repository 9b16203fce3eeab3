"""A deployment of the parties as services on this machine: who they are, where, and who is who.

Files, under ``<home>/services/``:

- ``enrolled/<party>.pub``: each party's public identity key (hex), published by the party
  itself at start; every service reads them to check who signed a request. The private key
  stays in the party's own folder (``home.party(name)``, owner-only).
- ``operator/``: the identity a person's commands sign with against a running deployment.
- ``deployment.json``: written by ``confide up`` once every service answers, removed when it
  stops: ``{"supervisor_pid": PID, "parties": {party: {"url": URL, "pid": PID}}}``. While its
  supervisor lives, every ``compose(home)`` in another process uses the services.

A service process knows its own party and the others' URLs from its environment
(:data:`PARTY_ENV`, :data:`PEERS_ENV`), set by ``confide up`` for each child.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import VerifyKey

from confide.common import settings
from confide.common.home import Home
from confide.services.signing import Signer, Verifier, party_key

# Every party served, in the order ``confide up`` gives them ports.
SERVED = ("ledger", "choices", "pseudonymiser", "hub", "access", "web")
# Parties a composition can reach over HTTP (the web is a front end, not reached).
REACHABLE = ("ledger", "choices", "pseudonymiser", "hub", "access")
OPERATOR = "operator"
PARTY_ENV = settings.SERVICE_PARTY.name
PEERS_ENV = settings.SERVICE_PEERS.name


def folder(home: Home) -> Path:
    path = home.root / "services"
    path.mkdir(parents=True, exist_ok=True)
    return path


def enrolled_folder(home: Home) -> Path:
    path = folder(home) / "enrolled"
    path.mkdir(parents=True, exist_ok=True)
    return path


def key_folder(home: Home, party: str) -> Path:
    """Where ``party`` keeps its private identity key (owner-only)."""
    if party != OPERATOR:
        return home.party(party)
    path = folder(home) / OPERATOR
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def publish(home: Home, party: str) -> Signer:
    """``party``'s signer, its public key published for the others to enrol."""
    key = party_key(key_folder(home, party))
    public = bytes(key.verify_key).hex()
    target = enrolled_folder(home) / f"{party}.pub"
    if not target.exists() or target.read_text().strip() != public:
        tmp = target.with_name(f".{party}.pub.{os.getpid()}")
        tmp.write_text(public + "\n")
        tmp.chmod(0o644)
        tmp.replace(target)
    return Signer(party, key)


def enrolled(home: Home) -> dict[str, VerifyKey]:
    """Every published party key."""
    keys = {}
    for path in sorted(enrolled_folder(home).glob("*.pub")):
        with contextlib.suppress(ValueError):
            keys[path.stem] = VerifyKey(bytes.fromhex(path.read_text().strip()))
    return keys


def verifier(home: Home) -> Verifier:
    return Verifier(enrolled(home))


def refresh(home: Home, check: Verifier) -> None:
    """Enrol keys published since ``check`` was made (a party started later, say)."""
    for party, key in enrolled(home).items():
        check.enrolled.setdefault(party, key)


def deployment_file(home: Home) -> Path:
    return home.root / "services" / "deployment.json"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def running(home: Home) -> dict | None:
    """The deployment running for ``home`` (None when none is, or its supervisor died)."""
    path = deployment_file(home)
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = found.get("supervisor_pid") if isinstance(found, dict) else None
    return found if isinstance(pid, int) and alive(pid) else None


@dataclass(frozen=True)
class Transport:
    """How a composition reaches the parties that are not its own: their URLs, and the
    identity it signs with."""

    remote: Mapping[str, str]
    signer: Signer


def transport_for(home: Home) -> Transport | None:
    """Services to use for ``home``: a service process's peers (from its environment), or a
    running deployment's (signing as the operator); None for the in-process composition."""
    party = settings.value(PARTY_ENV)
    if party:
        peers = json.loads(settings.value(PEERS_ENV) or "{}")
        remote = {p: url for p, url in peers.items() if p in REACHABLE and p != party}
        return Transport(remote, publish(home, party))
    found = running(home)
    if found is None:
        return None
    remote = {p: v["url"] for p, v in found.get("parties", {}).items() if p in REACHABLE}
    return Transport(remote, publish(home, OPERATOR))
