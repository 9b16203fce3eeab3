"""Keys made on first use: owner-only, and one key even when many processes race to make it."""

from __future__ import annotations

import multiprocessing
import os
import stat

from confide.common.secrets import load_or_create


def _make(path: str, queue) -> None:
    from pathlib import Path

    queue.put(load_or_create(Path(path), lambda: os.urandom(32)))


def test_racing_processes_agree_on_one_key(tmp_path) -> None:
    path = tmp_path / "keys" / "k.key"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_make, args=(str(path), queue)) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    keys = {queue.get(timeout=5) for _ in workers}
    assert len(keys) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["k.key"]
