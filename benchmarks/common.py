"""Shared helpers for benchmarks: medians, a results file, a readable table."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Where figures are saved; the smoke runs in the test suite point it at a temporary folder.
RESULTS = Path(
    os.environ.get("CONFIDE_BENCH_RESULTS") or Path(__file__).resolve().parent / "results"
)
POSTGRES_URL = os.environ.get(
    "CONFIDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


_SCHEMAS_LIKE = "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"


@contextlib.contextmanager
def operational_store(backend: str) -> Iterator[None]:
    """Every party's store on SQLite (in its folder), or on PostgreSQL ($CONFIDE_TEST_POSTGRES_URL,
    default the local test server) in throwaway schemas dropped afterwards."""
    if backend != "postgresql":
        os.environ.pop("CONFIDE_DATABASE_URL", None)
        yield
        return
    from sqlalchemy import create_engine, text

    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    os.environ["CONFIDE_DATABASE_URL"] = POSTGRES_URL
    os.environ["CONFIDE_DATABASE_SCHEMA_PREFIX"] = prefix
    try:
        yield
    finally:
        engine = create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            names = conn.execute(
                text(
                    "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"
                ),
                {"p": prefix + "%"},
            ).scalars()
            for name in list(names):
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


def median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def print_rows(title: str, rows: list[tuple[str, str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows) + 2
    for label, value, note in rows:
        print(f"  {label:<{width}}{value:>18}  {note}")


# Parties that tell others of their changes through an outbox.
OUTBOX_PARTIES = ("choices", "hub", "access")


def store_rows(home: Path, party: str, sql: str) -> list[Any]:
    """Rows of one query on a party's operational store (opening no party)."""
    from sqlalchemy import text

    from confide.common import opstore
    from confide.common.home import Home

    engine = opstore.make_engine(party, Home.at(home).party(party))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def unsettled(home: Path) -> int:
    """Events still waiting in any outbox, and erasures some store has not yet confirmed."""
    waiting = sum(
        store_rows(home, p, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")[0][0]
        for p in OUTBOX_PARTIES
    )
    steps = "SELECT count(*) FROM erasure_steps WHERE confirmed_at IS NULL"
    return int(waiting + store_rows(home, "hub", steps)[0][0])


def settled(home: Path, timeout: float = 600.0, poll: float = 0.2) -> None:
    """Wait until every event is delivered (so in the ledger) and every erasure confirmed."""
    give_up = time.monotonic() + timeout
    while unsettled(home):
        if time.monotonic() > give_up:
            raise SystemExit(f"still unsettled after {timeout:.0f} s")
        time.sleep(poll)


def deployment(home: Path) -> dict[str, Any] | None:
    """The running services' ``deployment.json`` (None when there is none)."""
    path = home / "services" / "deployment.json"
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def answers(url: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 0.5):
            return True
    except OSError:
        return False


def serving(home: Path, supervisor: int, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until the supervisor ``supervisor`` has written its deployment and every party
    answers on its port; the deployment."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        found = deployment(home)
        if (
            found
            and found.get("supervisor_pid") == supervisor
            and found.get("parties")
            and all(answers(p["url"]) for p in found["parties"].values())
        ):
            return found
        time.sleep(0.2)
    raise SystemExit(f"the services did not come up in {timeout:.0f} s")


@contextlib.contextmanager
def services_up(home: Path, base_port: int) -> Iterator[dict[str, Any]]:
    """``confide up`` on ``home`` (loopback), serving until the block ends, then ``down``."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "confide"]
    up = subprocess.Popen(
        [*command, "up", "--home", str(home), "--base-port", str(base_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield serving(home, up.pid)
    finally:
        subprocess.run([*command, "down", "--home", str(home)], capture_output=True, check=False)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def area_numbers(area: Path) -> list[str]:
    """The valid NHS numbers of a synthetic area's patients (its exports carry some mistyped
    or missing on purpose), each once."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from confide.common.nhs_number import is_valid

    options = pacsv.ConvertOptions(column_types={"nhs_number": pa.string()})
    return sorted(
        {
            n
            for path in sorted(area.glob("*/patients.csv"))
            for n in pacsv.read_csv(path, convert_options=options).column("nhs_number").to_pylist()
            if is_valid(n)
        }
    )
