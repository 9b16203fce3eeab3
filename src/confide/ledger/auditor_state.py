"""What an auditor remembers of each log it checks, in one JSON file it keeps itself.

For each log, named by where it is (a URL, or ``home:<folder>``): the origin and the signing key
it was first seen with (or was told to expect), and every checkpoint verified since. A log that
later turns up at the same place under another origin or key, smaller, or with another root
for a size seen before, has been tampered with. The file is only written after a clean check.

Version 1 of the file keyed logs by the origin the log itself claimed, which is what let a log
re-signed under a new origin pass as a new log; such files are read and their one log (or the
one whose origin matches) is claimed for the place being checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from confide.common.errors import InvalidInput
from confide.common.secrets import write_secret

VERSION = 2
LEGACY = "origin:"  # prefix of entries carried over from a version 1 file


def load_state(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {"version": VERSION, "logs": {}}
    try:
        state = json.loads(path.read_text())
        logs = state.setdefault("logs", {})
    except (ValueError, AttributeError):
        raise InvalidInput(
            "The verifier's state file is not readable JSON.",
            hint="Restore it from a backup; deleting it forgets every checkpoint seen so far.",
        ) from None
    if state.get("version", 1) == 1:
        state["logs"] = {
            f"{LEGACY}{origin}": {**log, "origin": origin} for origin, log in logs.items()
        }
        state["version"] = VERSION
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    write_secret(path, json.dumps(state, indent=1, sort_keys=True).encode())


def log_state(state: dict[str, Any], address: str, claimed_origin: str) -> dict[str, Any] | None:
    """What this auditor remembers of the log at ``address`` (None on a first check)."""
    logs = state["logs"]
    if address in logs:
        return logs[address]
    legacy = [key for key in logs if key.startswith(LEGACY)]
    if len(legacy) > 1:  # several logs, named only by what they claimed: take the one named so
        legacy = [key for key in legacy if key == f"{LEGACY}{claimed_origin}"]
    if len(legacy) == 1:
        logs[address] = logs.pop(legacy[0])
        return logs[address]
    return None
