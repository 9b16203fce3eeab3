"""The durable log on SQLite and PostgreSQL: RFC-exact roots and proofs from stored state,
concurrent writers, and a crash in the middle of a batched append."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from test_ledger_merkle import RFC_LEAVES, RFC_ROOT, ref_mth, ref_path, ref_proof

from confide.common.home import Home
from confide.ledger import merkle
from confide.ledger.log import Ledger
from confide.ledger.verify import LocalSource, verify


def _assert_dense_and_consistent(ledger: Ledger) -> int:
    rows = list(ledger.store.iter_rows())
    assert [i for i, _, _ in rows] == list(range(len(rows)))
    head = ledger.head()
    assert head.size == len(rows)
    assert head.root == merkle.root_from_leaves([merkle.leaf_hash(d) for _, d, _ in rows])
    return len(rows)


def test_reference_tree_from_the_store(opstore, tmp_path: Path) -> None:
    with Ledger.open(Home.at(tmp_path)) as ledger:
        assert ledger.head().root == merkle.EMPTY_ROOT
        ledger.append_raw(RFC_LEAVES[:3])
        ledger.append_raw(RFC_LEAVES[3:])
        assert ledger.head().root.hex() == RFC_ROOT
        for n in range(9):
            assert ledger.root_at(n) == ref_mth(RFC_LEAVES[:n])


def test_stored_proofs_match_the_rfc_for_every_size_to_70(opstore, tmp_path: Path) -> None:
    data = [f"leaf {i}".encode() for i in range(71)]
    rng = random.Random(1)
    with Ledger.open(Home.at(tmp_path)) as ledger:
        pos = 0
        while pos < len(data):  # batches of uneven sizes
            step = rng.randint(1, 9)
            assert ledger.append_raw(data[pos : pos + step]) == list(
                range(pos, min(71, pos + step))
            )
            pos += step
        for n in range(71):
            assert ledger.root_at(n) == ref_mth(data[:n]), n
        for _ in range(300):
            n = rng.randint(1, 71)
            m = rng.randrange(n)
            index, path = ledger.inclusion_proof(m, n)
            assert (index, path) == (m, ref_path(m, data[:n]))
            by_hash = ledger.inclusion_proof(merkle.leaf_hash(data[m]), n)
            assert by_hash == (m, path)
            first = rng.randint(0, n)
            expected = ref_proof(first, data[:n]) if 0 < first < n else []
            assert ledger.consistency_proof(first, n) == expected


def test_concurrent_writers_threads_and_processes(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    Ledger.open(home).close()  # create keys and tables once
    script = textwrap.dedent(
        f"""
        from confide.common.home import Home
        from confide.ledger.log import Ledger
        with Ledger.open(Home.at({str(tmp_path)!r})) as ledger:
            for b in range(15):
                ledger.append_raw([b"proc-%d-%d-%d" % ({{p}}, b, i) for i in range(7)])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script.replace("{p}", str(p))]) for p in range(3)
    ]
    got: dict[int, list[int]] = {}
    shared = Ledger.open(home)  # one engine, a connection per thread

    def writer(t: int) -> None:
        got[t] = []
        for b in range(20):
            leaves = [b"thread-%d-%d-%d" % (t, b, i) for i in range(5)]
            got[t].extend(shared.append_raw(leaves))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(p.wait(120) == 0 for p in procs)
    shared.close()
    with Ledger.open(home) as ledger:
        total = _assert_dense_and_consistent(ledger)
        assert total == 6 * 20 * 5 + 3 * 15 * 7
        indices = [i for ids in got.values() for i in ids]
        assert len(set(indices)) == len(indices) == 600
        leaves = {d for _, d, _ in ledger.store.iter_rows()}
        assert len(leaves) == total  # no entry lost or written twice
        # each batch is contiguous: a batch is one transaction
        for ids in got.values():
            for b in range(0, len(ids), 5):
                assert ids[b : b + 5] == list(range(ids[b], ids[b] + 5))


CRASH_SCRIPT = """
import sys
from confide.common.home import Home
from confide.ledger.log import Ledger
ledger = Ledger.open(Home.at(sys.argv[1]))
b = 0
while True:
    ledger.append_raw([b"crash-%d-%d" % (b, i) for i in range(2000)])
    b += 1
    print(b, flush=True)
"""


@pytest.mark.parametrize("delay", [0.05, 0.13])
def test_kill_9_in_the_middle_of_a_batched_append(opstore, tmp_path: Path, delay: float) -> None:
    home = Home.at(tmp_path)
    with Ledger.open(home) as ledger:
        ledger.append_raw([b"before"])
        ledger.checkpoint()
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # one batch committed: the writer is in its loop
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Ledger.open(home) as ledger:
        total = _assert_dense_and_consistent(ledger)
        assert (total - 1) % 2000 == 0  # whole batches only
        ledger.append_raw([b"after"])  # the log is writable again
        ledger.checkpoint()
        result = verify(LocalSource(ledger), tmp_path / "state.json", local=ledger)
        assert result["ok"], result["problems"]
        assert result["size"] == total + 1
