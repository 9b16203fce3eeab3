"""Several processes on one installation from its very first use: migrations run once, under
a lock (a lock file for SQLite, an advisory lock on PostgreSQL), so three commands started at
once on a new home all succeed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect

from confide.choices.registry import ChoicesRegistry
from confide.common import opstore as opstore_module
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.embedded import Installation


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from confide.cli.main import run; run()", *args]


@pytest.mark.parametrize("attempt", range(2))
def test_three_choices_commands_at_once_on_a_new_home(opstore, tmp_path: Path, attempt) -> None:
    home = tmp_path / f"new-home-{attempt}"
    numbers = [str(n) for n in generate_test_numbers(3, np.random.default_rng(attempt))]
    procs = [
        subprocess.Popen(
            _cli(
                "choices", "set", "--nhs-number", n, "--no-research", "--channel", "online",
                "--home", str(home), "--json",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for n in numbers
    ]  # fmt: skip
    outcomes = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert json.loads(out)["choices"]["no_research"] is True
    with ChoicesRegistry.open(Home.at(home)) as registry:
        assert all(registry.current(n).no_research for n in numbers)


def test_migrations_in_many_threads_and_engines_run_once(opstore, tmp_path: Path) -> None:
    """Many engines (as many processes would have) migrating one new store at once."""
    folder = tmp_path / "choices"
    folder.mkdir()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def one() -> None:
        try:
            engine = opstore_module.make_engine("choices", folder)
            start.wait()
            opstore_module.migrate(engine, "choices")
            engine.dispose()
        except BaseException as exc:  # a failure in a thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    engine = opstore_module.make_engine("choices", folder)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names(schema=opstore_module.schema_for("choices"))
        assert {"people", "choice_events", "choice_state"} <= set(names)
    finally:
        engine.dispose()


def test_the_sqlite_lock_file_sits_beside_the_database(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
    engine = opstore_module.make_engine("choices", tmp_path)
    opstore_module.migrate(engine, "choices")
    engine.dispose()
    assert (tmp_path / ".choices.db.migrate.lock").exists()
    assert create_engine(f"sqlite:///{tmp_path / 'choices.db'}")  # the store itself is there


HOLDER = """
import sys, time
from confide.common.home import Home
from confide.embedded import Installation
from confide.embedded import Installation
with Installation.open(Home.at(sys.argv[1])) as parties:  # what `confide serve` holds open
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not sys.stdin.closed:
        parties.pseudonymiser.pseudonyms_for(["9434765919"])  # busy, as a server would be
        time.sleep(0.02)
"""


def test_a_command_and_a_running_server_share_a_home(tmp_path: Path, monkeypatch) -> None:
    """The person index is opened only while a call works on it, under a lock file: a CLI
    command runs while another process holds the same installation open and busy."""
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    with Installation.open(Home.at(home)):
        pass  # a home in use before the server starts
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        for _ in range(2):
            done = subprocess.run(
                _cli("hub", "readmit", "--home", str(home), "--json"),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout) == {"records": 0, "rows": 0}
        with Installation.open(Home.at(home)) as parties:  # and in this process too
            assert parties.pseudonymiser.pseudonyms_to_erase(["9434765919"])[0]
        assert holder.poll() is None  # the server kept running throughout
    finally:
        holder.kill()
        holder.wait()
