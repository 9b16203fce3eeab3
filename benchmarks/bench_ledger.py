"""Benchmark the transparency log: batched appends per second and proof times.

    python benchmarks/bench_ledger.py                       # 100,000 entries, both backends
    python benchmarks/bench_ledger.py --entries 1000000     # the issue's figure
    python benchmarks/bench_ledger.py --backend sqlite --batch 5000

Entries go through ``Ledger.append_many`` (schema validation and identifier scan included).
PostgreSQL is taken from ``$CONFIDE_TEST_POSTGRES_URL`` (default: the local test server) and
uses a throwaway schema that is dropped afterwards. Prints medians.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

from common import operational_store

from confide.common.home import Home
from confide.ledger import merkle
from confide.ledger.log import Ledger


def _body(i: int) -> tuple[str, dict]:
    return (
        "query_run",
        {
            "project_id": f"P-{i % 97:04d}",
            "query_id": f"q-{i}",
            "query_digest": f"{i:064x}",
            "mode": "rounding",
        },
    )


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.2f} ms, p95 " + (
        f"{sorted(samples)[int(len(samples) * 0.95)] * 1000:.2f} ms"
    )


def run(backend: str, entries: int, batch: int, proofs: int) -> None:
    with (
        operational_store(backend),
        tempfile.TemporaryDirectory() as tmp,
        Ledger.open(Home.at(tmp)) as ledger,
    ):
        times = []
        start = time.perf_counter()
        for b in range(0, entries, batch):
            items = [_body(i) for i in range(b, min(entries, b + batch))]
            t0 = time.perf_counter()
            ledger.append_many(items)
            times.append((time.perf_counter() - t0) / len(items))
        total = time.perf_counter() - start
        print(f"[{backend}] {entries:,} entries in batches of {batch:,}")
        print(
            f"  appends: median {1 / statistics.median(times):,.0f}/s per batch, "
            f"{entries / total:,.0f}/s overall ({total:.1f} s)"
        )
        t0 = time.perf_counter()
        checkpoint = ledger.checkpoint()
        print(f"  checkpoint: {(time.perf_counter() - t0) * 1000:.2f} ms")
        rng = random.Random(0)
        size = checkpoint.size
        incl, by_hash, cons = [], [], []
        for _ in range(proofs):
            index = rng.randrange(size)
            t0 = time.perf_counter()
            _, path = ledger.inclusion_proof(index, size)
            incl.append(time.perf_counter() - t0)
            leaf = ledger.store.entries(index, index + 1)[0][1]
            lh = merkle.leaf_hash(leaf)
            t0 = time.perf_counter()
            ledger.inclusion_proof(lh, size)
            by_hash.append(time.perf_counter() - t0)
            merkle.verify_inclusion(index, size, lh, path, checkpoint.root)
            first = rng.randrange(1, size)
            t0 = time.perf_counter()
            proof = ledger.consistency_proof(first, size)
            cons.append(time.perf_counter() - t0)
            merkle.verify_consistency(first, size, ledger.root_at(first), checkpoint.root, proof)
        print(f"  inclusion proof by index:     {_ms(incl)}")
        print(f"  inclusion proof by leaf hash: {_ms(by_hash)}")
        print(f"  consistency proof:            {_ms(cons)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--proofs", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run(backend, args.entries, args.batch, args.proofs)


if __name__ == "__main__":
    main()
