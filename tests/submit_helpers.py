"""Submitting a synthetic extract through the practice agent, as a source would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from confide.practice import keys


def write_extract(parties: Any, extract: Any) -> Path:
    """Enrol the extract's source and write its signed submission; the folder."""
    from confide.practice.minimise import minimise
    from confide.practice.type1 import type1_states
    from confide.practice.writer import write_submission

    parties.hub.enrol(extract.source, extract.kind, keys.verify_key(parties.home, extract.source))
    done = minimise(extract, type1_states(extract.table("events")))
    _, path = write_submission(
        parties.home.root / "outbox",
        ods=extract.source,
        kind=extract.kind,
        identities=done.identities,
        tables=done.tables,
        counts={},
        pseudonymiser_key=parties.pseudonymiser.public_key(),
        signing_key=keys.signing_key(parties.home, extract.source),
    )
    return Path(path)


def pseudonyms_in_hub(hub_folder: Path) -> set[str]:
    """Every pseudonym in any file of the record store."""
    found: set[str] = set()
    for path in (hub_folder / "records").rglob("*.parquet"):
        found.update(pq.read_table(path).column("pseudonym").to_pylist())
    return found


def ledger_kinds(ledger: Any) -> list[str]:
    return [e.kind for e in ledger.decoded(0, ledger.head().size)]


def confide(*args: str, cwd: Path | None = None, timeout: float = 300) -> Any:
    """Run the ``confide`` command as a user would, in a separate process (this tree's code)."""
    import os
    import subprocess
    import sys

    command = Path(sys.executable).parent / "confide"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run(
        [str(command), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )
