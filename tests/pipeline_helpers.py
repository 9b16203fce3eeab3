"""Wiring for pipeline tests: a home with a pseudonymiser, a hub, and a way to submit extracts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from confide.common.home import Home
from confide.hub.ingest import Hub
from confide.practice import keys
from confide.practice.minimise import minimise
from confide.practice.model import Extract
from confide.practice.type1 import type1_states
from confide.practice.writer import write_submission
from confide.pseudonymiser import Pseudonymiser


@dataclass
class World:
    home: Home
    pseudonymiser: Pseudonymiser
    hub: Hub

    def submit(self, extract: Extract, out: Path | None = None) -> Path:
        """Run the practice agent's steps on ``extract`` and return the submission folder."""
        self.hub.enrol(extract.source, extract.kind, keys.verify_key(self.home, extract.source))
        result = minimise(extract, type1_states(extract.table("events")))
        counts = {
            "type1_excluded": result.type1_excluded,
            "type1_withdrawn": result.type1_withdrawn,
        }
        _, path = write_submission(
            out or self.home.root / "outbox",
            ods=extract.source,
            kind=extract.kind,
            identities=result.identities,
            tables=result.tables,
            counts=counts,
            pseudonymiser_key=self.pseudonymiser.public_key(),
            signing_key=keys.signing_key(self.home, extract.source),
        )
        return path

    def close(self) -> None:
        self.hub.close()
        self.pseudonymiser.close()


def nobody_has_opted_out(numbers: list[str]) -> list[bool]:
    """A choices port for tests of the pseudonymiser alone: an explicit stand-in, since the
    pseudonymiser has no default (a default would let everyone's rows through)."""
    return [False] * len(numbers)


# The two choices ports, for a pseudonymiser tested without a registry (said out loud).
WITHOUT_REGISTRY = {"shares_nothing": nobody_has_opted_out, "on_type1": lambda _changes: None}


def make_world(root: Path) -> World:
    home = Home.at(root)
    pseudonymiser = Pseudonymiser.open(home, **WITHOUT_REGISTRY)
    return World(home, pseudonymiser, Hub(home, pseudonymiser))


def store_fingerprint(hub: Hub) -> dict[str, str]:
    """Hash of every file in the record store (catalog included)."""
    folder = hub.records.folder
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def hub_rows(hub: Hub, table: str) -> list[tuple]:
    con = hub.records.connect()
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
