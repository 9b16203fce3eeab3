"""Patients going through the journey (and, when BENCH_RESEARCHER=1, one researcher running
a heavy query again and again) against the served app.

Each simulated patient is one person of the area (from $BENCH_USERS, a JSON list), behind the
"proxy" with their own address, reading their code from the file the server wrote for their
contact. Request names are the steps, so locust's statistics are per page.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from pathlib import Path

from locust import HttpUser, between, events, task

USERS = json.loads(Path(os.environ["BENCH_USERS"]).read_text())
CODES = Path(os.environ["BENCH_CODES"])
RESEARCHER = json.loads(os.environ.get("BENCH_RESEARCHER", "null"))
_NEXT = itertools.count()
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


_LOG: list[tuple[str, float, int]] = []


@events.request.add_listener
def _record(name: str, response_time: float, response, exception, **_: object) -> None:
    status = getattr(response, "status_code", 0) or 0
    _LOG.append((name, response_time, 599 if exception and not status else status))


@events.quitting.add_listener
def _write(environment, **_: object) -> None:
    Path(os.environ["BENCH_LOG"]).write_text(json.dumps(_LOG))


def code_for(contact: str, after: float) -> str | None:
    """The newest code written for ``contact`` since ``after`` (waiting up to 20 s)."""
    path = CODES / hashlib.sha256(contact.encode()).hexdigest()[:24]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime >= after:
            return path.read_text().strip()
        time.sleep(0.05)
    return None


def csrf(text: str) -> str:
    found = _CSRF.search(text)
    return found.group(1) if found else ""


class Patient(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        n = next(_NEXT)
        self.person = USERS[n % len(USERS)]
        self.address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        self.client.headers["X-Forwarded-For"] = self.address

    @task
    def journey(self) -> None:
        c = self.client
        c.get("/", name="start")
        page = c.get("/identity", name="identity page")
        token = csrf(page.text)
        birth = self.person["birth_date"].split("-")
        sent = time.time() - 0.01
        started = c.post(
            "/identity",
            name="identity submit",
            data={
                "csrf_token": token,
                "nhs_number": self.person["nhs_number"],
                "birth[day]": birth[2],
                "birth[month]": birth[1],
                "birth[year]": birth[0],
                "postcode": self.person["postcode"],
            },
        )
        code = code_for(self.person["contact"], sent) if started.ok else None
        if code is None:
            return
        mine = c.post("/code", name="code submit", data={"csrf_token": token, "code": code})
        token = csrf(mine.text)
        change = c.get("/change", name="change page")
        held = re.search(r'value="no_commercial"[^>]*\bchecked', change.text) is not None
        ticked = [] if held else ["no_commercial"]  # always a change: tick or clear it
        c.post("/change", name="change submit", data={"csrf_token": token, "choices": ticked})
        c.get("/your-choices", name="your choices")
        c.post("/sign-out", name="sign out", data={"csrf_token": token})


class Researcher(HttpUser):
    """One researcher, running the heavy query back to back (only when configured)."""

    wait_time = between(0, 1)
    fixed_count = 1  # chosen on the command line only for the run with a researcher

    def on_start(self) -> None:
        c = self.client
        c.headers["X-Forwarded-For"] = "192.0.2.10"
        token = csrf(c.get("/staff/sign-in", name="staff sign in").text)
        sent = time.time() - 0.01
        form = {"csrf_token": token, "email": RESEARCHER["email"]}
        c.post("/staff/sign-in", name="staff sign in", data=form)
        code = code_for(RESEARCHER["email"], sent)
        done = c.post("/staff/code", name="staff code", data={"csrf_token": token, "code": code})
        self.token = csrf(done.text)

    @task
    def heavy_query(self) -> None:
        self.client.post(
            f"/staff/projects/{RESEARCHER['project']}/console",
            name="researcher query (heavy)",
            data={"csrf_token": self.token, "sql": RESEARCHER["sql"]},
            timeout=120,
        )
