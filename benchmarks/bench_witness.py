"""What signing every append, and having two witnesses cosign it, costs one append.

    python benchmarks/bench_witness.py                       # 300 appends each way, SQLite
    python benchmarks/bench_witness.py --appends 1000 --backend postgresql

Each way appends the same single ``refusal`` entry ``--appends`` times, one append per call
(the worst case: a checkpoint, and a round of cosigning, for every entry) and reports the
median and 95th percentile latency of one append:

- baseline: the entry, its subtree hashes and the tree state, with no checkpoint (what an
  append cost when checkpoints were signed on request);
- signed: the same, with the checkpoint signed and stored in the same transaction (now);
- two witnesses in-process: signed, then both witnesses asked, their cosignatures checked and
  kept (the embedded deployment and the demo);
- two witnesses over HTTP on loopback: the same through ``POST /add-checkpoint``.

PostgreSQL is taken from ``$CONFIDE_TEST_POSTGRES_URL`` (default: the local test server) in
throwaway schemas; witnesses always keep their own SQLite state.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from common import operational_store, print_rows, save

from confide.common.home import Home
from confide.ledger import entries as schema
from confide.ledger.log import Ledger
from confide.ledger.witnessing import HttpWitness, Witnessing, WitnessLink
from confide.witness.api import make_app
from confide.witness.local import LocalWitness
from confide.witness.service import Witness

BODY = ("refusal", {"subject": "query", "ref": "q-1", "reason": "Too small to release."})


def _witnesses(root: Path, ledger: Ledger) -> list[Witness]:
    out = []
    for name in ("w1", "w2"):
        w = Witness.open(root / name, name=f"bench.example/{name}")
        w.trust(ledger.signer.name, ledger.verifier.vkey)
        out.append(w)
    return out


@contextlib.contextmanager
def _served(witness: Witness) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(make_app(witness), host="127.0.0.1", port=0, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def _times(append: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        append()
        out.append(time.perf_counter() - t0)
    return out


def _unsigned(ledger: Ledger) -> Callable[[], object]:
    """One append as before: validated and stamped, no checkpoint."""

    def append() -> object:
        schema.validate(*BODY)
        return ledger.store.append(lambda: [schema.envelope(*BODY, schema.timestamp())])

    return append


def run(backend: str, appends: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with (
        operational_store(backend),
        tempfile.TemporaryDirectory() as tmp,
        Ledger.open(Home.at(tmp)) as ledger,
    ):
        ledger.append(*BODY)  # warm up: migrations, connections
        results["baseline: no checkpoint"] = _times(_unsigned(ledger), appends)
        results["signed checkpoint"] = _times(lambda: ledger.append(*BODY), appends)
        ws = _witnesses(Path(tmp) / "local", ledger)
        links = [WitnessLink(w.verifier, LocalWitness(w), "local") for w in ws]
        ledger.witnessing = Witnessing(ledger, links)
        ledger.append(*BODY)
        results["+ 2 witnesses in-process"] = _times(lambda: ledger.append(*BODY), appends)
        http_ws = _witnesses(Path(tmp) / "http", ledger)
        with _served(http_ws[0]) as url1, _served(http_ws[1]) as url2:
            links = [
                WitnessLink(w.verifier, HttpWitness(url), url)
                for w, url in zip(http_ws, (url1, url2), strict=True)
            ]
            ledger.witnessing = Witnessing(ledger, links)
            ledger.append(*BODY)
            results["+ 2 witnesses over HTTP"] = _times(lambda: ledger.append(*BODY), appends)
            ledger.witnessing.close()
            ledger.witnessing = None
        for w in ws + http_ws:
            w.close()
    return results


def _ms(samples: list[float], q: float) -> float:
    return sorted(samples)[int(len(samples) * q)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    payload = {}
    for backend in backends:
        results = run(backend, args.appends)
        base = statistics.median(results["baseline: no checkpoint"])
        rows = []
        for label, samples in results.items():
            median = statistics.median(samples)
            rows.append(
                (
                    label,
                    f"{median * 1000:.2f} ms",
                    f"p95 {_ms(samples, 0.95):.2f} ms, {median / base:.1f}x the baseline",
                )
            )
        print_rows(f"[{backend}] one append, median of {args.appends}", rows)
        payload[backend] = {
            label: {"median_ms": statistics.median(s) * 1000, "p95_ms": _ms(s, 0.95)}
            for label, s in results.items()
        }
    print(f"\nSaved {save('witness', {'appends': args.appends, **payload})}")


if __name__ == "__main__":
    main()
