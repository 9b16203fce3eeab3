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
