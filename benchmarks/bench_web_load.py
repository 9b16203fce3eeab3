"""Load test: patients through the whole journey while a researcher runs a heavy query.

The app is served as ``confide serve`` serves it (uvicorn, one process) on loopback over a demo
area; locust drives ``--users`` simulated patients (each a real person of the area, with their
own address behind the trusted proxy) for ``--seconds``, twice: first alone (the baseline),
then while one researcher runs a query that works a core for ``--query-seconds`` back to back.
Reported: p50/p95/p99 of the patients' pages, 5xx and failures, and the server's peak memory.

    .venv/bin/python benchmarks/bench_web_load.py --users 200 --seconds 90 --query-seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
LOAD = HERE / "load"
RESULTS = HERE / "results"
SQL = "SELECT count(DISTINCT p.patient_id) AS patients FROM patients p"
STAFF_NAMES = {"staff sign in", "staff code", "researcher query (heavy)"}


def build(home: Path, patients: int, people: int) -> list[dict[str, str]]:
    """The demo area (made once per home) and ``people`` of its patients with contacts."""
    from confide.common.home import Home
    from confide.demo.flow import run_demo
    from confide.embedded import Installation

    where = Home.at(home)
    if not (home / "area").exists():
        t = time.perf_counter()
        run_demo(where, patients=patients)
        print(f"built a demo area of {patients:,} patients in {time.perf_counter() - t:.0f} s")
    from sqlalchemy import select

    from confide.choices import store

    with Installation.open(where) as parties:
        dm, pp = store.demographics, store.people
        with parties.choices.engine.connect() as conn:
            rows = conn.execute(
                select(pp.c.nhs_number, dm.c.birth_date, dm.c.postcode, dm.c.practice)
                .join(dm, dm.c.person_id == pp.c.id)
                .where(dm.c.postcode.is_not(None))
                .order_by(pp.c.id)
                .limit(people)
            ).all()
        users = [
            {
                "nhs_number": r.nhs_number,
                "birth_date": r.birth_date.isoformat(),
                "postcode": r.postcode,
                "contact": f"load-{i}@patients.example",
            }
            for i, r in enumerate(rows)
        ]
        parties.choices.enrol_demographics(
            (u["nhs_number"], u["birth_date"], u["postcode"], r.practice, None, u["contact"])
            for u, r in zip(users, rows, strict=True)
        )
    return users


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Memory:
    """The server's resident memory, sampled every 0.5 s (its children included)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.start = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        procs = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak = max(self.peak, self._rss())
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def phase(
    url: str,
    env: dict[str, str],
    users: int,
    seconds: int,
    classes: list[str],
    tag: str,
    server: int,
) -> dict[str, Any]:
    log = RESULTS / f"web_load_{tag}.json"
    memory = Memory(server)
    command = [
        sys.executable, "-m", "locust", "-f", str(LOAD / "locustfile.py"), "--headless",
        "--host", url, "-u", str(users), "-r", "50", "-t", f"{seconds}s", "--stop-timeout", "60",
        "--only-summary", "--loglevel", "WARNING", *classes,
    ]  # fmt: skip
    began = time.perf_counter()
    subprocess.run(command, env={**env, "BENCH_LOG": str(log)}, check=False)
    took = time.perf_counter() - began
    peak = memory.stop()
    requests = json.loads(log.read_text())
    patients = [(n, ms, s) for n, ms, s in requests if n not in STAFF_NAMES]
    times = sorted(ms for _, ms, _ in patients)

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(q * len(times)))] if times else float("nan")

    by_page: dict[str, list[float]] = {}
    for name, ms, _ in patients:
        by_page.setdefault(name, []).append(ms)
    research = [ms for n, ms, _ in requests if n == "researcher query (heavy)"]
    return {
        "seconds": round(took, 1),
        "patient_requests": len(patients),
        "journeys": sum(1 for n, _, s in patients if n == "sign out" and s == 200),
        "p50_ms": round(pct(0.50), 1),
        "p95_ms": round(pct(0.95), 1),
        "p99_ms": round(pct(0.99), 1),
        "server_errors_5xx": sum(1 for *_, s in requests if 500 <= s < 599),
        "connections_dropped": sum(1 for *_, s in requests if s == 599),
        "failures": sum(1 for *_, s in requests if s == 0 or s >= 400),
        "p95_by_page_ms": {
            k: round(sorted(v)[int(0.95 * len(v))], 1) for k, v in sorted(by_page.items())
        },
        "heavy_queries_completed": len(research),
        "heavy_query_median_s": round(statistics.median(research) / 1000, 1) if research else None,
        "server_peak_rss_mb": round(peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=Path("/tmp/confide-load"))
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--query-seconds", type=float, default=30.0)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    users = build(args.home, args.patients, args.users)
    from confide.access.seed import PEOPLE

    codes = args.home / "load-codes"
    users_file = RESULTS / "web_load_users.json"
    users_file.write_text(json.dumps(users))
    researcher = {"email": PEOPLE["researcher"][2], "project": "demo-research", "sql": SQL}
    env = {
        **os.environ,
        "BENCH_USERS": str(users_file),
        "BENCH_CODES": str(codes),
        "BENCH_RESEARCHER": json.dumps(researcher),
    }
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, str(LOAD / "serve_app.py"), "--home", str(args.home),
            "--port", str(port), "--codes", str(codes),
            "--query-seconds", str(args.query_seconds),
        ],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.5)
        baseline = phase(url, env, args.users, args.seconds, ["Patient"], "baseline", server.pid)
        loaded = phase(
            url, env, args.users + 1, args.seconds, ["Patient", "Researcher"], "query", server.pid
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {
        "users": args.users,
        "seconds": args.seconds,
        "query_seconds": args.query_seconds,
        "patients_in_area": args.patients,
        "baseline_no_query": baseline,
        "with_heavy_query": loaded,
        "targets": {"p95_ms": 500, "server_errors_5xx": 0},
    }
    (RESULTS / "web_load.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
