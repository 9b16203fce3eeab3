"""Browser tests: the web app served on a free localhost port, driven by Debian's Chromium.

Chromium is never downloaded by Playwright: it must be at /usr/bin/chromium (run
``scripts/ensure-browser``). When it is missing these tests fail, they do not skip.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers

from web_seed import SeededHome, build_home

from confide.choices.identity import IdentityConfig

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artefacts" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def seeded(tmp_path_factory) -> SeededHome:
    lenient = IdentityConfig(min_seconds=0, person_starts=1000, client_starts=1000, failures=1000)
    home = build_home(tmp_path_factory.mktemp("browser") / "home", config=lenient)
    yield home
    home.close()


@pytest.fixture(scope="session")
def base_url(seeded) -> str:
    """The app, served by uvicorn in a thread on 127.0.0.1 (stopped after the session)."""
    port = _free_port()
    config = uvicorn.Config(
        seeded.app(demo=True), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("The web app did not start for the browser tests.")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run scripts/ensure-browser (Debian's chromium).")
    if not AXE.exists():
        pytest.fail("axe-core is missing: run scripts/ensure-browser (npm ci in web/).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE.read_text()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
