"""Bounded fuzzing of what takes outside input: the export readers (every format) and the
TRE's SQL checker, with Hypothesis; and the API with schemathesis over its OpenAPI schema.

Readers: a small valid export of each format is mutated (bytes flipped, cut, repeated,
spliced, lines shuffled) and read; SQL: valid queries are mutated and random text is checked.
Anything but a result or a ConfideError (a clear refusal) is a crash; crashes are printed with
the input that caused them, so each can become a regression test.

    .venv/bin/python benchmarks/bench_fuzz.py --examples 3000 --api-examples 500
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

SQL_SEEDS = [
    "SELECT p.sex, count(DISTINCT p.patient_id) AS patients FROM patients p GROUP BY 1",
    "SELECT count(*) FROM events e WHERE e.code IN ('44054006') AND e.date >= DATE '2020-01-01'",
    "WITH t AS (SELECT patient_id, min(date) AS d FROM events GROUP BY 1) SELECT count(*) FROM t",
    "SELECT p.birth_year, avg(p.birth_year) FROM patients p JOIN events e ON e.patient_id = "
    "p.patient_id GROUP BY p.birth_year HAVING count(*) > 10 ORDER BY 1 LIMIT 5",
]
SQL_WORDS = [
    "SELECT", "FROM", "WHERE", "(", ")", ",", "*", "patients", "events", "p", "e", ".", "'",
    '"', ";", "--", "/*", "*/", "UNION", "JOIN", "ON", "read_csv('x')", "COPY", "ATTACH",
    "pragma", "1e309", "NULL", "CASE WHEN", "END", "OVER (", "PARTITION BY", "::", "$1", "\\",
    "\x00", "ä", "DROP TABLE", "INSERT", "WITH RECURSIVE", "LATERAL", "unnest([1])",
]  # fmt: skip


class Crashes:
    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []
        self.examples = 0

    def call(self, what: str, action: Any, sample: Any) -> None:
        from confide.common.errors import ConfideError

        self.examples += 1
        try:
            action()
        except ConfideError:
            pass
        except Exception as exc:  # a crash: kept with its input
            self.found.append(
                {
                    "target": what,
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                    "input": repr(sample)[:400],
                    "where": traceback.format_exc().splitlines()[-3:],
                }
            )


def mutate(data: bytes, draw: Any) -> bytes:
    """One of several mutations of ``data``."""
    kind = draw(st.sampled_from(["flip", "cut", "repeat", "splice", "insert", "lines"]))
    if not data:
        return draw(st.binary(max_size=64))
    i = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    if kind == "cut":
        return data[:i]
    if kind == "repeat":
        j = draw(st.integers(i, min(len(data), i + 200)))
        return data[:j] + data[i:j] * draw(st.integers(2, 5)) + data[j:]
    if kind == "splice":
        return data[:i] + draw(st.binary(max_size=40)) + data[i + 40 :]
    if kind == "insert":
        junk = draw(st.sampled_from([b"\x00", b"\xff\xfe", b'"', b",", b"\n", b"{", b"<", b"]"]))
        return data[:i] + junk * draw(st.integers(1, 20)) + data[i:]
    lines = data.split(b"\n")
    return b"\n".join(draw(st.permutations(lines)) if len(lines) < 200 else lines[::-1])


def _fuzz_source(
    source: Path, originals: dict[Path, bytes], examples: int, crashes: Crashes
) -> None:
    from confide.practice.readers import read_source

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: Any) -> None:
        target = data.draw(st.sampled_from(sorted(originals)))
        mutated = mutate(originals[target], data.draw)
        target.write_bytes(mutated)
        try:
            what = f"reader:{target.suffix or target.name}"
            crashes.call(what, lambda: read_source(source), (target.name, mutated[:300]))
        finally:
            target.write_bytes(originals[target])

    run()


def fuzz_readers(examples: int, crashes: Crashes) -> dict[str, int]:
    from confide.synth import generate

    done: dict[str, int] = {}
    work = Path(tempfile.mkdtemp(prefix="confide-fuzz-"))
    try:
        for fmt in ("csv", "fhir", "fhir-bundle", "fhir-xml"):
            area = work / fmt
            generate(area, patients=12, seed=3, fmt=fmt, practices=1, trusts=1)
            source = next(p for p in sorted(area.iterdir()) if (p / "source.json").exists())
            files = sorted(p for p in source.iterdir() if p.is_file() and p.name != "source.json")
            originals = {p: p.read_bytes() for p in files}
            before = crashes.examples

            _fuzz_source(source, originals, examples // 4, crashes)
            done[fmt] = crashes.examples - before
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return done


def fuzz_sql(examples: int, crashes: Crashes) -> int:
    from confide.tre.guard import check_query

    allowed = {
        "patients": ["patient_id", "sex", "birth_year", "practice"],
        "events": ["patient_id", "code", "date", "value"],
    }
    before = crashes.examples

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data())
    def run(data: Any) -> None:
        how = data.draw(st.sampled_from(["mutate", "words", "text"]))
        if how == "mutate":
            sql = mutate(data.draw(st.sampled_from(SQL_SEEDS)).encode(), data.draw)
            text = sql.decode("utf-8", "replace")
        elif how == "words":
            text = " ".join(data.draw(st.lists(st.sampled_from(SQL_WORDS), max_size=40)))
        else:
            text = data.draw(st.text(max_size=300))
        for dialect in ("duckdb", "spark"):
            crashes.call(f"sql:{dialect}", lambda d=dialect: check_query(text, allowed, d), text)

    run()
    return crashes.examples - before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fuzz_api(home: Path, patients: int, examples: int, max_seconds: int) -> dict[str, Any]:
    """schemathesis over /api/openapi.json against the served app, as a researcher."""
    sys.path.insert(0, str(HERE))
    from bench_web_load import build

    from confide.access.seed import PEOPLE
    from confide.common.home import Home
    from confide.embedded import Installation

    build(home, patients, 50)
    with Installation.open(Home.at(home)) as parties:
        org, _, email, _ = PEOPLE["researcher"]
        client_id, secret = parties.access.create_client(org, email)
        token = parties.access.issue_token(client_id, secret).access_token
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "load" / "serve_app.py"), "--home", str(home),
         "--port", str(port), "--codes", str(home / "fuzz-codes"), "--query-seconds", "0"],
        # The GP endpoints enabled, as in a real deployment (unset, they answer 503 by design).
        env={**os.environ, "CONFIDE_GP_TOKEN": "fuzz-gp-token"},
    )  # fmt: skip
    har = RESULTS / "api_fuzz.har"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.5)
        began = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run",
                f"http://127.0.0.1:{port}/api/openapi.json",
                "--checks", "not_a_server_error,response_schema_conformance",
                "--max-examples", str(examples), "--max-time", str(max_seconds),
                "--header", f"Authorization: Bearer {token}",
                "--report", "har", "--report-har-path", str(har),
                "--request-timeout", "30", "--continue-on-failure", "--seed", "2026",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        took = time.perf_counter() - began
    finally:
        server.terminate()
        server.wait(timeout=30)
    entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
    statuses: dict[str, int] = {}
    for entry in entries:
        key = str(entry["response"]["status"])
        statuses[key] = statuses.get(key, 0) + 1
    (RESULTS / "api_fuzz.txt").write_text(run.stdout[-20000:] + run.stderr[-5000:])
    return {
        "requests": len(entries),
        "server_errors_5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
        "statuses": dict(sorted(statuses.items())),
        "schemathesis_exit": run.returncode,
        "seconds": round(took, 1),
        "summary": run.stdout.strip().splitlines()[-12:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=2000, help="Hypothesis examples each")
    parser.add_argument("--api-examples", type=int, default=500, help="per API operation")
    parser.add_argument("--api-seconds", type=int, default=900)
    parser.add_argument("--home", type=Path, default=Path("/tmp/confide-load"))
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-hypothesis", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    crashes = Crashes()
    t = time.perf_counter()
    readers = {} if args.skip_hypothesis else fuzz_readers(args.examples, crashes)
    sql = 0 if args.skip_hypothesis else fuzz_sql(args.examples, crashes)
    result: dict[str, Any] = {
        "readers_examples": readers,
        "sql_examples": sql,
        "hypothesis_seconds": round(time.perf_counter() - t, 1),
        "crashes": crashes.found,
    }
    if not args.skip_api:
        result["api"] = fuzz_api(args.home, args.patients, args.api_examples, args.api_seconds)
    (RESULTS / "fuzz.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
