"""The tampering suite: every attack on the log that issue 13 names, each its own test, each
rejected by ``confide ledger verify`` run as an auditor would run it, on the installation
(``--home``) and over the public API (``--url``).

The attacker is an insider who can rewrite the ledger's database, and in the attacks that say
so also holds its signing key. The auditor has checked the log once before and kept its state
file, as the docs tell auditors to do; witnesses catch what a fresh auditor alone cannot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from loopback import free_port, served
from sqlalchemy import delete, update
from typer.testing import CliRunner

from confide.cli.main import app as cli
from confide.common.home import Home
from confide.embedded import witnessed
from confide.ledger import merkle
from confide.ledger.api import make_router
from confide.ledger.log import Ledger
from confide.ledger.store import checkpoints, cosignatures, entries, nodes, tree_state
from confide.ledger.witnessing import WitnessSpec, add_witness
from confide.witness.service import Witness

runner = CliRunner()
SIZE = 40


@dataclass
class Auditor:
    """Runs ``confide ledger verify`` against one log, always at the same place."""

    home: Home
    state: Path
    where: str  # local | url
    port: int

    def verify(self, *extra: str) -> tuple[int, dict]:
        if self.where == "local":
            return self._run("--home", str(self.home.root), *extra)
        with Ledger.open(self.home) as ledger:  # the log as served right now
            web = FastAPI()
            web.include_router(make_router(ledger), prefix="/api/ledger")
            with served(web, self.port) as url:
                return self._run("--url", f"{url}/api/ledger", *extra)

    def _run(self, *args: str) -> tuple[int, dict]:
        result = runner.invoke(
            cli, ["ledger", "verify", "--state", str(self.state), *args, "--json"]
        )
        return result.exit_code, json.loads(result.stdout)

    def rejects(self, *expected: str) -> dict:
        code, result = self.verify()
        assert code == 4 and not result["ok"], result
        text = " ".join(result["problems"])
        for phrase in expected:
            assert phrase in text, result["problems"]
        return result


def _body(i: int) -> tuple[str, dict]:
    return "query_run", {
        "project_id": f"P{i % 3}",
        "query_id": f"q{i}",
        "query_digest": f"{i:064x}",
        "mode": "dp",
    }


@pytest.fixture(params=["local", "url"])
def auditor(request, opstore, tmp_path: Path) -> Auditor:
    """A log of 40 entries (appended in two batches: checkpoints at 30 and 40) that the
    auditor has verified once."""
    home = Home.at(tmp_path / "home")
    with Ledger.open(home) as ledger:
        ledger.append_many(_body(i) for i in range(30))
        ledger.append_many(_body(i) for i in range(30, SIZE))
    auditor = Auditor(home, tmp_path / "auditor.json", request.param, free_port())
    code, first = auditor.verify()
    assert code == 0 and first["size"] == SIZE, first
    return auditor


# --- what the attacker does ------------------------------------------------------------------


def _leaves(home: Home) -> list[bytes]:
    with Ledger.open(home) as ledger:
        return [data for _, data in ledger.store.entries(0, 10**9)]


def _rewrite(home: Home, leaves: Sequence[bytes], *, sign: bool, keep_checkpoints: bool) -> None:
    """Replace the log's entries with ``leaves``, recomputing every stored hash and the tree
    state; with ``sign``, also sign a checkpoint of the result with the log's key."""
    with Ledger.open(home) as ledger:
        with ledger.store.engine.begin() as conn:
            wipe = [entries, nodes] + ([] if keep_checkpoints else [checkpoints, cosignatures])
            for table in wipe:
                conn.execute(delete(table))
            conn.execute(update(tree_state).values(size=0, root=merkle.EMPTY_ROOT, frontier=b""))
        if sign:
            ledger.append_raw(leaves)
        else:
            ledger.store.append(lambda: leaves)


def _edited(leaves: list[bytes], at: int) -> list[bytes]:
    out = list(leaves)
    out[at] = out[at].replace(b'"P', b'"X')
    return out


# --- the attacks -----------------------------------------------------------------------------


def test_an_edited_entry_is_rejected(auditor: Auditor) -> None:
    _rewrite(auditor.home, _edited(_leaves(auditor.home), 7), sign=False, keep_checkpoints=True)
    auditor.rejects("do not reproduce the signed root")


def test_a_deleted_entry_is_rejected(auditor: Auditor) -> None:
    leaves = _leaves(auditor.home)
    del leaves[11]
    _rewrite(auditor.home, leaves, sign=False, keep_checkpoints=True)
    auditor.rejects()


def test_reordered_entries_are_rejected(auditor: Auditor) -> None:
    leaves = _leaves(auditor.home)
    leaves[3], leaves[4] = leaves[4], leaves[3]
    _rewrite(auditor.home, leaves, sign=False, keep_checkpoints=True)
    auditor.rejects("do not reproduce the signed root")


def test_a_truncated_log_is_rejected(auditor: Auditor) -> None:
    """The newest entries removed, the checkpoint that covers them left in place."""
    _rewrite(auditor.home, _leaves(auditor.home)[:35], sign=False, keep_checkpoints=True)
    auditor.rejects(f"checkpoint says {SIZE}")


def test_a_truncated_log_re_signed_is_rejected(auditor: Auditor) -> None:
    """The same, with the key: a fresh checkpoint of the shorter log."""
    _rewrite(auditor.home, _leaves(auditor.home)[:35], sign=True, keep_checkpoints=False)
    auditor.rejects("History rewritten", "now signs only 35")


def test_a_forked_history_is_rejected(auditor: Auditor) -> None:
    """With the key: entry 2 changed, every hash recomputed, more entries, a fresh checkpoint."""
    leaves = [*_edited(_leaves(auditor.home), 2), b"one more", b"and another"]
    _rewrite(auditor.home, leaves, sign=True, keep_checkpoints=False)
    auditor.rejects("History rewritten")


def test_a_rollback_to_an_earlier_signed_state_is_rejected(auditor: Auditor) -> None:
    """The log put back as it was at 30 entries: its genuine, earlier checkpoint again."""
    _rewrite(auditor.home, _leaves(auditor.home)[:30], sign=True, keep_checkpoints=False)
    with Ledger.open(auditor.home) as ledger:
        assert [c.size for c in ledger.store.checkpoints()] == [30]
    auditor.rejects("now signs only 30")


def test_a_new_origin_with_the_same_key_is_rejected(auditor: Auditor) -> None:
    """The history rewritten and re-signed with the same key under a new origin line, so that
    it looks like another log."""
    leaves = _edited(_leaves(auditor.home), 5)[:20]
    (auditor.home.root / "ledger" / "origin.txt").write_text("confide.local/ledger/fresh\n")
    _rewrite(auditor.home, leaves, sign=True, keep_checkpoints=False)
    result = auditor.rejects("now calls itself 'confide.local/ledger/fresh'")
    assert result["origin"] == "confide.local/ledger/fresh"


def test_a_new_origin_with_a_new_key_is_rejected(auditor: Auditor) -> None:
    leaves = _edited(_leaves(auditor.home), 5)[:20]
    folder = auditor.home.root / "ledger"
    (folder / "origin.txt").write_text("confide.local/ledger/fresh\n")
    (folder / "checkpoint-signing.key").write_bytes(b"k" * 32)
    _rewrite(auditor.home, leaves, sign=True, keep_checkpoints=False)
    auditor.rejects("different signing key", "now calls itself")


def test_a_new_key_under_the_same_origin_is_rejected(auditor: Auditor) -> None:
    (auditor.home.root / "ledger" / "checkpoint-signing.key").write_bytes(b"k" * 32)
    _rewrite(auditor.home, _leaves(auditor.home), sign=True, keep_checkpoints=False)
    auditor.rejects("different signing key")


def test_a_split_view_of_two_checkpoints_of_the_same_size_is_rejected(auditor: Auditor) -> None:
    """With the key: another history of exactly the same size, signed. The auditor has the
    first view's checkpoint; the log now shows it the second."""
    _rewrite(auditor.home, _edited(_leaves(auditor.home), 5), sign=True, keep_checkpoints=False)
    with Ledger.open(auditor.home) as ledger:
        assert ledger.checkpoint().size == SIZE
    auditor.rejects("Split view")


def test_deleting_the_newest_entry_is_rejected(auditor: Auditor) -> None:
    """Issue 13's case: an entry appended after the auditor's check, then deleted. Every
    append is signed as it commits, so the deleted entry was covered and is missed."""
    with Ledger.open(auditor.home) as ledger:
        ledger.append(*_body(99))
    _rewrite(auditor.home, _leaves(auditor.home)[:SIZE], sign=False, keep_checkpoints=True)
    auditor.rejects(f"checkpoint says {SIZE + 1}")


def test_entries_no_checkpoint_covers_are_rejected_and_never_served(auditor: Auditor) -> None:
    """Entries written behind the log's back (the tree state updated, no checkpoint signed)."""
    with Ledger.open(auditor.home) as ledger:
        ledger.store.append(lambda: [b'{"forged":1}', b'{"forged":2}'])
        assert ledger.head().size == SIZE + 2 and ledger.checkpoint().size == SIZE
    if auditor.where == "local":
        result = auditor.rejects("2 entries after the latest checkpoint")
        assert result["uncovered"] == 2
        return
    code, result = auditor.verify()  # the API serves only what a checkpoint covers
    assert code == 0 and result["size"] == SIZE
    with Ledger.open(auditor.home) as ledger:
        web = FastAPI()
        web.include_router(make_router(ledger), prefix="/api/ledger")
        with served(web) as url:
            import httpx

            resp = httpx.get(f"{url}/api/ledger/entries", params={"start": SIZE, "end": SIZE + 2})
            assert resp.status_code == 400
            hashes = [merkle.leaf_hash(b'{"forged":1}').hex()]
            resp = httpx.get(f"{url}/api/ledger/proof/inclusion", params={"leaf_hash": hashes[0]})
            assert resp.status_code == 404


def test_a_fresh_auditor_pins_as_told(auditor: Auditor) -> None:
    """An auditor with no state, told the origin and key out of band, is not fooled either."""
    code, honest = auditor.verify()
    origin, key = honest["origin"], honest["verifier_key"]
    (auditor.home.root / "ledger" / "origin.txt").write_text("confide.local/ledger/fresh\n")
    (auditor.home.root / "ledger" / "checkpoint-signing.key").write_bytes(b"k" * 32)
    _rewrite(auditor.home, _leaves(auditor.home)[:10], sign=True, keep_checkpoints=False)
    auditor.state = auditor.state.with_name("fresh.json")
    code, result = auditor.verify("--origin", origin, "--key", key)
    assert code == 4 and not result["ok"]
    assert not auditor.state.exists()  # nothing pinned from a failed check


# --- witnesses -------------------------------------------------------------------------------


def _witnesses(home: Home) -> list[str]:
    """Two witnesses, in-process, watching this log and cosigning its latest checkpoint."""
    with Ledger.open(home) as ledger:
        origin, key = ledger.signer.name, ledger.verifier.vkey
    keys = []
    for name in ("w1", "w2"):
        with Witness.open(home.root / "witnesses" / name, name=f"witness.example/{name}") as w:
            w.trust(origin, key)
            keys.append(w.verifier.vkey)
        add_witness(home.party("ledger"), WitnessSpec(keys[-1], folder=f"witnesses/{name}"))
    with witnessed(home, Ledger.open(home)) as ledger:
        assert set(ledger.witnessing.cosign_latest().values()) == {"cosigned"}
    return keys


def test_a_witness_catches_a_split_view(auditor: Auditor) -> None:
    """The log shows the witnesses one history; then an insider signs another of the same
    size. Asked to cosign it, every witness refuses and keeps it as evidence; an auditor who
    has never seen the log, but requires the witnesses, rejects it too."""
    keys = _witnesses(auditor.home)
    witness_args = [arg for key in keys for arg in ("--witness", key)]
    fresh = auditor.state.with_name("fresh.json")
    assert auditor.verify(*witness_args)[0] == 0

    _rewrite(auditor.home, _edited(_leaves(auditor.home), 5), sign=True, keep_checkpoints=False)
    cosign = runner.invoke(cli, ["ledger", "cosign", "--home", str(auditor.home.root), "--json"])
    assert cosign.exit_code == 4
    assert all(o.startswith("ALARM") for o in json.loads(cosign.stdout)["witnesses"].values())
    for name in ("w1", "w2"):
        with Witness.open(auditor.home.root / "witnesses" / name) as w:
            assert [e.reason.split(":")[0] for e in w.store.evidence()] == ["split view"]

    auditor.state = fresh  # never saw the first view: only the witnesses can tell
    code, result = auditor.verify(*witness_args)
    assert code == 4 and "cosigned by 0 of the witnesses" in " ".join(result["problems"])


def test_a_quorum_short_of_witnesses_is_rejected(auditor: Auditor) -> None:
    keys = _witnesses(auditor.home)
    with Ledger.open(auditor.home) as ledger:  # an append the witnesses never see
        ledger.append(*_body(99))
    code, result = auditor.verify("--witness", keys[0], "--witness", keys[1], "--quorum", "1")
    assert code == 4 and "cosigned by 0" in " ".join(result["problems"])
    with witnessed(auditor.home, Ledger.open(auditor.home)) as ledger:
        ledger.witnessing.cosign_latest()
    code, result = auditor.verify("--witness", keys[0], "--witness", keys[1])
    assert code == 0 and sorted(result["cosigned_by"]) == [
        "witness.example/w1",
        "witness.example/w2",
    ]


def test_a_quorum_larger_than_the_witnesses_named_cannot_run(auditor: Auditor) -> None:
    keys = _witnesses(auditor.home)
    code, result = auditor.verify("--witness", keys[0], "--quorum", "2")
    assert code == 2 and "quorum" in result["error"]
