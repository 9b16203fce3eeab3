"""The web app as ``confide serve`` builds it, for the load test: on loopback, behind a
"proxy" (locust sends each simulated patient's own X-Forwarded-For), with codes written to
files named by a digest of the contact (so each simulated person finds their own), and each
TRE query made to work a core for ``--query-seconds`` inside its worker (DuckDB, no GIL), as a
heavy query would.

    python benchmarks/load/serve_app.py --home H --port P --codes DIR --query-seconds 30
"""

from __future__ import annotations

import argparse
import hashlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

from confide.choices.identity import IdentityService
from confide.common.home import Home
from confide.embedded import Installation
from confide.web.cli import installation_app


def code_file(codes: Path, contact: str) -> Path:
    return codes / hashlib.sha256(contact.encode()).hexdigest()[:24]


class FileCodes:
    """The benchmark's stand-in for GOV.UK Notify: one file per contact, latest code."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def send(self, contact: str | None, code: str, expires_at: datetime) -> None:
        if contact:
            code_file(self.folder, contact).write_text(code)

    def choices_changed(self, contact: Any, changes: Any, at: Any, by_proxy: bool) -> None:
        pass


class HeavyQueries:
    """The TRE's query service, each run first working one core for ``seconds``."""

    def __init__(self, service: Any, seconds: float) -> None:
        self._service, self._seconds = service, seconds

    def run(self, *args: Any, **kwargs: Any) -> Any:
        import duckdb

        end = time.monotonic() + self._seconds
        con = duckdb.connect()
        con.execute("SET threads = 1")
        while time.monotonic() < end:
            con.execute("SELECT sum(hash(range)) FROM range(3000000)").fetchone()
        con.close()
        return self._service.run(*args, **kwargs)

    def __call__(self) -> HeavyQueries:
        return self  # the TRE's API takes a service or a function giving one

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--codes", type=Path, required=True)
    parser.add_argument("--query-seconds", type=float, default=30.0)
    args = parser.parse_args()
    codes = FileCodes(args.codes)
    with Installation.open(Home.at(args.home)) as parties:
        identity = IdentityService.open(parties.choices, parties.home.root, notifier=codes)
        app = installation_app(
            parties,
            demo=False,
            identity=identity,
            notices=codes,
            queries=HeavyQueries(parties.service, args.query_seconds),
            secure_cookies=False,
            trusted_proxies=["127.0.0.1"],
        )
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
        )


if __name__ == "__main__":
    main()
