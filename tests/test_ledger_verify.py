"""``confide ledger verify`` catches every kind of tampering, made by editing the rows directly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import typer
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select, update
from typer.testing import CliRunner

from confide.common.home import Home
from confide.ledger import cli, merkle
from confide.ledger.api import make_router
from confide.ledger.log import Ledger
from confide.ledger.store import checkpoints, entries, node_id, nodes, tree_state
from confide.ledger.verify import HttpSource, verify

app = typer.Typer()
cli.mount(app)
runner = CliRunner()


def _run(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["ledger", *args, "--json"])
    return result.exit_code, orjson.loads(result.stdout)


def _fill(home: Home, n: int = 40) -> None:
    with Ledger.open(home) as ledger:
        ledger.append_many(
            (
                "query_run",
                {
                    "project_id": f"P{i % 3}",
                    "query_id": f"q{i}",
                    "query_digest": "ab" * 32,
                    "mode": "dp",
                },
            )
            for i in range(n)
        )
        ledger.checkpoint()


def _edit(home: Home, change: Callable) -> None:
    with Ledger.open(home) as ledger, ledger.store.engine.begin() as conn:
        change(conn)


def _shift_up_from(conn, start: int) -> None:
    """Make room at ``start`` by renumbering every later entry (two steps: keys stay unique)."""
    conn.execute(
        update(entries)
        .where(entries.c.leaf_index >= start)
        .values(leaf_index=-entries.c.leaf_index - 1)
    )
    conn.execute(
        update(entries).where(entries.c.leaf_index < 0).values(leaf_index=-entries.c.leaf_index)
    )


def _swap(conn, a: int, b: int) -> None:
    rows = {
        r.leaf_index: r
        for r in conn.execute(select(entries).where(entries.c.leaf_index.in_([a, b])))
    }
    for x, y in ((a, b), (b, a)):
        conn.execute(
            update(entries)
            .where(entries.c.leaf_index == x)
            .values(leaf_input=rows[y].leaf_input, leaf_hash=rows[y].leaf_hash)
        )


def _forged(data: bytes = b'{"forged":true}') -> dict:
    return {"leaf_input": data, "leaf_hash": merkle.leaf_hash(data)}


TAMPERING = {
    "edited entry": lambda c: c.execute(
        update(entries).where(entries.c.leaf_index == 7).values(leaf_input=b'{"edited":1}')
    ),
    "edited entry and its leaf hash": lambda c: c.execute(
        update(entries).where(entries.c.leaf_index == 7).values(**_forged())
    ),
    "deleted entry": lambda c: c.execute(delete(entries).where(entries.c.leaf_index == 11)),
    "deleted last entry": lambda c: c.execute(delete(entries).where(entries.c.leaf_index == 39)),
    "reordered entries": lambda c: _swap(c, 3, 4),
    "inserted entry": lambda c: (
        _shift_up_from(c, 5),
        c.execute(insert(entries).values(leaf_index=5, **_forged())),
    ),
    "appended behind the log's back": lambda c: c.execute(
        insert(entries).values(leaf_index=40, **_forged())
    ),
    "altered subtree hash": lambda c: c.execute(
        update(nodes).where(nodes.c.node_id == node_id(2, 1)).values(hash=bytes(32))
    ),
    "altered checkpoint": lambda c: c.execute(
        update(checkpoints).values(note=checkpoints.c.note.op("||")("x"))
    ),
    "checkpoint with a forged size": lambda c: c.execute(
        update(checkpoints).values(note=func.replace(checkpoints.c.note, "\n40\n", "\n39\n"))
    ),
}


def test_untouched_log_verifies_and_remembers_its_checkpoint(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home)
    code, first = _run("verify", "--home", str(tmp_path))
    assert code == 0 and first["ok"] and first["size"] == 40
    state = tmp_path / "ledger-verifier" / "state.json"
    assert state.exists()
    with Ledger.open(home) as ledger:
        ledger.append("refusal", {"subject": "project", "ref": "P9", "reason": "Insurance."})
        ledger.checkpoint()
    code, second = _run("verify", "--home", str(tmp_path))
    assert code == 0 and second["size"] == 41 and 40 in second["checkpoints_checked"]


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_each_kind_of_tampering_is_detected(opstore, tmp_path: Path, kind: str) -> None:
    home = Home.at(tmp_path)
    _fill(home)
    assert _run("verify", "--home", str(tmp_path))[0] == 0
    _edit(home, TAMPERING[kind])
    code, result = _run("verify", "--home", str(tmp_path))
    assert code == 4, result
    assert not result["ok"] and result["problems"]


def _rewrite_history(home: Home, at: int) -> None:
    """What an insider holding the signing key would do: rebuild the log with one entry
    changed, recompute every hash and sign a fresh checkpoint."""
    with Ledger.open(home) as ledger:
        old = [d for _, d in ledger.store.entries(0, 10**9)]
        with ledger.store.engine.begin() as conn:
            for table in (entries, nodes, checkpoints):
                conn.execute(delete(table))
            conn.execute(update(tree_state).values(size=0, root=merkle.EMPTY_ROOT, frontier=b""))
        old[at] = old[at].replace(b'"P', b'"X')
        ledger.append_raw([*old, b"one more"])
        ledger.checkpoint()


def test_rewritten_history_is_detected_even_when_re_signed(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home)
    assert _run("verify", "--home", str(tmp_path))[0] == 0
    _rewrite_history(home, 2)
    code, result = _run("verify", "--home", str(tmp_path))
    assert code == 4
    assert any("History rewritten" in p for p in result["problems"])
    # a fresh auditor (no state) sees a self-consistent log: that is why state is kept
    code, fresh = _run("verify", "--home", str(tmp_path), "--state", str(tmp_path / "new.json"))
    assert code == 0 and fresh["ok"]


def test_shrunk_log_is_detected(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home)
    assert _run("verify", "--home", str(tmp_path))[0] == 0
    with Ledger.open(home) as ledger:
        kept = [d for _, d in ledger.store.entries(0, 30)]
        with ledger.store.engine.begin() as conn:
            for table in (entries, nodes, checkpoints):
                conn.execute(delete(table))
            conn.execute(update(tree_state).values(size=0, root=merkle.EMPTY_ROOT, frontier=b""))
        ledger.append_raw(kept)
        ledger.checkpoint()
    code, result = _run("verify", "--home", str(tmp_path))
    assert code == 4 and "History rewritten" in result["problems"][0]


def test_a_different_signing_key_is_refused(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home)
    assert _run("verify", "--home", str(tmp_path))[0] == 0
    (tmp_path / "ledger" / "checkpoint-signing.key").write_bytes(b"k" * 32)
    with Ledger.open(home) as ledger:
        ledger.append_raw([b"x"])
        ledger.checkpoint()
    code, result = _run("verify", "--home", str(tmp_path))
    assert code == 4 and any("key" in p for p in result["problems"])


def test_verify_over_http_detects_tampering(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home, 1500)  # more than one page of entries
    ledger = Ledger.open(home)
    web = FastAPI()
    web.include_router(make_router(ledger), prefix="/api/ledger")
    state = tmp_path / "auditor.json"
    with TestClient(web) as client:
        source = HttpSource(client, "/api/ledger")
        assert verify(source, state)["ok"]
        _edit(home, TAMPERING["reordered entries"])
        result = verify(source, state)
        assert not result["ok"]
        assert "edited, deleted, reordered or inserted" in result["problems"][0]
    ledger.close()


def test_cli_verify_by_url(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home)
    ledger = Ledger.open(home)
    web = FastAPI()
    web.include_router(make_router(ledger), prefix="/api/ledger")
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/api/ledger"
        state = str(tmp_path / "auditor.json")
        code, result = _run("verify", "--url", url, "--state", state)
        assert code == 0 and result["ok"] and result["size"] == 40
        _rewrite_history(home, 5)
        code, result = _run("verify", "--url", url, "--state", state)
        assert code == 4 and any("rewritten" in p for p in result["problems"])
    finally:
        server.should_exit = True
        thread.join(10)
        ledger.close()


def test_show_and_checkpoint_commands(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home, 5)
    code, shown = _run("show", "--home", str(tmp_path), "--start", "1", "--end", "3")
    assert code == 0 and [e["index"] for e in shown["entries"]] == [1, 2]
    assert shown["entries"][0]["kind"] == "query_run"
    code, signed = _run("checkpoint", "--home", str(tmp_path))
    assert code == 0 and signed["size"] == 5 and signed["checkpoint"].startswith(signed["origin"])


def test_verify_without_a_ledger_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ledger", "verify", "--home", str(tmp_path / "none")])
    assert result.exit_code == 2


def _as_version_1(state_file: Path) -> None:
    """Write the state as the first version of the file kept it: by the origin the log claimed."""
    state = orjson.loads(state_file.read_bytes())
    (log,) = state["logs"].values()
    origin = log.pop("origin")
    state_file.write_bytes(orjson.dumps({"logs": {origin: log}}))


def test_a_state_file_of_the_first_version_keeps_its_pins(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    _fill(home)
    state = tmp_path / "ledger-verifier" / "state.json"
    assert _run("verify", "--home", str(tmp_path))[0] == 0
    _as_version_1(state)
    code, result = _run("verify", "--home", str(tmp_path))  # read, claimed for this log
    assert code == 0 and result["ok"]
    assert orjson.loads(state.read_bytes())["version"] == 2
    _as_version_1(state)
    (tmp_path / "ledger" / "origin.txt").write_text("confide.local/ledger/other\n")
    _rewrite_history(home, 3)  # re-signed under the new origin, same key
    code, result = _run("verify", "--home", str(tmp_path))
    assert code == 4 and any("now calls itself" in p for p in result["problems"])
