"""The log asks its witnesses to cosign every checkpoint, keeps what they send back and serves
it; a witness that is down delays nothing, and one that has seen another history raises the
alarm."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from loopback import served
from sqlalchemy import delete, update
from typer.testing import CliRunner

from confide.cli.main import app as cli
from confide.common.home import Home
from confide.embedded import witnessed
from confide.ledger import merkle
from confide.ledger.add_checkpoint import WitnessReply
from confide.ledger.api import make_router
from confide.ledger.cosignature import CosignatureVerifier
from confide.ledger.log import Ledger
from confide.ledger.store import checkpoints, cosignatures, entries, nodes, tree_state
from confide.ledger.witnessing import (
    Witnessing,
    WitnessLink,
    WitnessSpec,
    add_witness,
    load_witnesses,
)
from confide.witness.api import make_app
from confide.witness.service import Witness

runner = CliRunner()


def _make_witnesses(home: Home, names: tuple[str, ...] = ("w1", "w2")) -> list[Witness]:
    with Ledger.open(home) as ledger:
        origin, key = ledger.signer.name, ledger.verifier.vkey
    out = []
    for name in names:
        w = Witness.open(home.root / "witnesses" / name, name=f"witness.example/{name}")
        w.trust(origin, key)
        out.append(w)
    return out


def _in_process(home: Home) -> list[CosignatureVerifier]:
    keys = []
    for w, name in zip(_make_witnesses(home), ("w1", "w2"), strict=True):
        keys.append(w.verifier)
        add_witness(home.party("ledger"), WitnessSpec(w.verifier.vkey, folder=f"witnesses/{name}"))
        w.close()
    return keys


def _append(ledger: Ledger, n: int) -> None:
    for i in range(n):
        ledger.append("refusal", {"subject": "query", "ref": f"q{i}", "reason": "Too small."})


def test_every_checkpoint_is_cosigned_by_every_witness(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    keys = _in_process(home)
    with witnessed(home, Ledger.open(home)) as ledger:
        _append(ledger, 5)
        stored = ledger.store.checkpoints()
        assert [c.size for c in stored] == [1, 2, 3, 4, 5]
        for c in stored:
            lines = ledger.store.cosignature_lines(c.size, c.root)
            assert len(lines) == 2
            for key in keys:
                assert key.find(c.note + "".join(lines)) is not None
        served_note = ledger.checkpoint().text
        assert all(key.find(served_note) for key in keys)


def test_the_api_serves_the_checkpoint_with_its_cosignatures(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    keys = _in_process(home)
    with witnessed(home, Ledger.open(home)) as ledger:
        _append(ledger, 3)
        web = FastAPI()
        web.include_router(make_router(ledger), prefix="/api/ledger")
        with TestClient(web) as client:
            doc = client.get("/api/ledger/checkpoint").json()
            listed = client.get("/api/ledger/witnesses").json()["witnesses"]
    assert doc["size"] == 3 and doc["cosigned_by"] == sorted(k.name for k in keys)
    assert all(k.find(doc["checkpoint"]) for k in keys)
    assert {w["verifier_key"] for w in listed} == {k.vkey for k in keys}


def test_witnesses_served_over_http(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    (w1, w2) = _make_witnesses(home)
    with served(make_app(w1)) as url1, served(make_app(w2)) as url2:
        for w, url in ((w1, url1), (w2, url2)):
            add_witness(home.party("ledger"), WitnessSpec(w.verifier.vkey, url=url))
        with witnessed(home, Ledger.open(home)) as ledger:
            _append(ledger, 4)
            note = ledger.checkpoint().text
    assert w1.verifier.find(note) and w2.verifier.find(note)
    assert w1.store.latest(note.split("\n")[0]).size == 4
    w1.close()
    w2.close()


def test_a_witness_that_is_down_delays_nothing_and_catches_up(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    (w1,) = _make_witnesses(home, ("w1",))
    with served(make_app(w1)) as url:
        add_witness(home.party("ledger"), WitnessSpec(w1.verifier.vkey, url=url))
        with witnessed(home, Ledger.open(home)) as ledger:
            _append(ledger, 2)
    # the witness is gone: appends still commit, signed by the log, just not cosigned
    with witnessed(home, Ledger.open(home)) as ledger:
        _append(ledger, 3)
        assert ledger.head().size == 5 and not w1.verifier.find(ledger.checkpoint().text)
        assert ledger.witnessing.cosign_latest()[w1.key.name].startswith("unreachable")
    # back at a new address: the next round proves 2 -> 6 in one step
    with served(make_app(w1)) as url:
        add_witness(home.party("ledger"), WitnessSpec(w1.verifier.vkey, url=url))
        with witnessed(home, Ledger.open(home)) as ledger:
            _append(ledger, 1)
            assert w1.verifier.find(ledger.checkpoint().text)
    assert w1.store.latest(ledger.signer.name).size == 6
    w1.close()


def test_a_log_that_forgot_what_was_cosigned_learns_the_size_from_the_witness(
    opstore, tmp_path: Path
) -> None:
    home = Home.at(tmp_path)
    _in_process(home)
    with witnessed(home, Ledger.open(home)) as ledger:
        _append(ledger, 4)
        with ledger.store.engine.begin() as conn:
            conn.execute(delete(cosignatures))
        assert ledger.witnessing.cosign_latest() == dict.fromkeys(
            (s.verifier.name for s in load_witnesses(ledger.folder)), "cosigned"
        )


def test_a_forked_log_raises_the_alarm(opstore, tmp_path: Path) -> None:
    """An insider with the signing key rebuilds the log with one entry changed: the witnesses,
    who cosigned the real history, refuse every checkpoint of the new one."""
    home = Home.at(tmp_path)
    _in_process(home)
    with witnessed(home, Ledger.open(home)) as ledger:
        _append(ledger, 6)
        old = [d for _, d in ledger.store.entries(0, 6)]
        with ledger.store.engine.begin() as conn:
            for table in (entries, nodes, checkpoints, cosignatures):
                conn.execute(delete(table))
            conn.execute(update(tree_state).values(size=0, root=merkle.EMPTY_ROOT, frontier=b""))
        old[2] = old[2].replace(b"q2", b"qX")
        ledger.append_raw(old)  # signed by the log; cosigned by nobody
        for c in ledger.store.checkpoints():
            assert ledger.store.cosignature_lines(c.size, c.root) == []
    result = runner.invoke(cli, ["ledger", "cosign", "--home", str(tmp_path), "--json"])
    assert result.exit_code == 4, result.output
    outcomes = json.loads(result.stdout)["witnesses"]
    assert len(outcomes) == 2 and all(o.startswith("ALARM") for o in outcomes.values())
    for name in ("w1", "w2"):
        with Witness.open(home.root / "witnesses" / name) as w:
            assert w.store.evidence(), "the witness keeps the forked checkpoint as proof"


class _Liar:
    """A witness endpoint that answers 200 with a cosignature it did not make."""

    def __init__(self, line: str) -> None:
        self.line = line

    def add_checkpoint(self, request: bytes) -> WitnessReply:
        return WitnessReply(200, self.line)

    def close(self) -> None:
        pass


def test_a_forged_cosignature_is_never_kept(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    (honest,) = _make_witnesses(home, ("w1",))
    with Ledger.open(home) as ledger:
        _append(ledger, 2)
        genuine = honest.add_checkpoint(b"old 0\n\n" + ledger.store.checkpoints()[0].note.encode())
        ledger.witnessing = Witnessing(ledger, [WitnessLink(honest.verifier, _Liar(genuine), "x")])
        # a cosignature of checkpoint 1, offered for checkpoint 2
        assert "bad cosignature" in ledger.witnessing.cosign_latest()[honest.key.name]
        latest = ledger.store.latest_checkpoint()
        assert ledger.store.cosignature_lines(latest.size, latest.root) == []
        ledger.witnessing = None
    honest.close()


def test_concurrent_appends_end_cosigned(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    keys = _in_process(home)
    with witnessed(home, Ledger.open(home)) as ledger:
        threads = [threading.Thread(target=_append, args=(ledger, 5)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ledger.head().size == 20
        note = ledger.checkpoint().text
        assert ledger.checkpoint().size == 20
        assert all(k.find(note) for k in keys)


def test_the_list_of_witnesses_refuses_nonsense(tmp_path: Path) -> None:
    from confide.common.errors import InvalidInput

    folder = tmp_path / "ledger"
    folder.mkdir()
    key = Witness.open(tmp_path / "w").verifier.vkey
    for bad in (
        WitnessSpec("not a key", url="https://w.example"),
        WitnessSpec(key),
        WitnessSpec(key, url="ftp://w.example"),
        WitnessSpec(key, folder="../elsewhere"),
        WitnessSpec(key, folder="/abs"),
    ):
        with pytest.raises(InvalidInput):
            add_witness(folder, bad)
    add_witness(folder, WitnessSpec(key, url="https://w.example"))
    add_witness(folder, WitnessSpec(key, url="https://moved.example"))  # same witness, new place
    assert [s.url for s in load_witnesses(folder)] == ["https://moved.example"]


def test_the_transparency_page_names_the_witnesses(tmp_path: Path) -> None:
    from confide.web.app import create_app

    home = Home.at(tmp_path)
    keys = _in_process(home)
    with witnessed(home, Ledger.open(home)) as ledger:
        _append(ledger, 2)
        with TestClient(create_app(home, ledger=ledger, secure_cookies=False)) as client:
            page = client.get("/transparency").text
    for key in keys:
        assert key.name in page  # cosigned by
        assert f"--witness '{key.vkey}'" in page  # in the command to verify


def test_a_missing_witness_folder_is_reported_never_replaced(tmp_path: Path, caplog) -> None:
    """A listed in-process witness whose folder is gone is skipped and logged: a new witness
    with a new key is never made in its place."""
    import shutil

    home = Home.at(tmp_path)
    _in_process(home)
    shutil.rmtree(home.root / "witnesses" / "w1")
    with witnessed(home, Ledger.open(home)) as ledger:
        _append(ledger, 1)
        assert [link.verifier.name for link in ledger.witnessing.links] == ["witness.example/w2"]
    assert not (home.root / "witnesses" / "w1").exists()
    assert "cannot be opened" in caplog.text
