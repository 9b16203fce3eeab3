"""``confide choices import`` and ``POST /api/choices/import``: every line, or none.

Through the Python API, the CLI and HTTP: rejected lines are all listed with their numbers and
reasons (never their NHS numbers), nothing is recorded when any line is rejected, and the
changes go through the registry's own ``bulk_set`` so its listeners hear of every one.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from confide.choices.api import make_router
from confide.choices.batch import ImportRejected, import_choices, parse
from confide.choices.identity import IdentityConfig, IdentityService
from confide.choices.registry import ChoicesRegistry
from confide.cli.main import app
from confide.common import exit_codes
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers

NUMBERS = [str(n) for n in generate_test_numbers(20, np.random.default_rng(5))]
BAD = "9434765918"  # fails the modulus 11 check


@pytest.fixture
def registry(opstore, tmp_path: Path):
    with ChoicesRegistry.open(Home.at(tmp_path / "home")) as opened:
        yield opened


def _csv(*lines: str, ending: str = "\n") -> bytes:
    return ending.join(lines).encode() + ending.encode()


def test_every_line_is_recorded_and_the_listeners_hear_each(registry) -> None:
    heard = []
    registry.listeners.append(heard.append)
    data = _csv(
        "nhs_number,choice,channel,date",
        f"{NUMBERS[0]},no_research,letter,2026-01-02",
        f" {NUMBERS[1]} , share_nothing , phone , 2026-01-03 ",
        f"{NUMBERS[0]},allow_all,online,2026-01-04",
        f"{NUMBERS[0]},allow_all,letter,2026-01-05",
        ending="\r\n",
    )
    report = import_choices(registry, data)
    assert (report.lines, report.recorded, report.rejected) == (4, 4, [])
    # The online line could not undo the letter (each channel keeps its own fact); the later
    # letter withdrew it.
    assert not registry.current(NUMBERS[0]).no_research
    assert registry.history(NUMBERS[0])[1].channel.value == "online"
    assert registry.current(NUMBERS[1]).share_nothing
    assert [e.nhs_number for e in heard] == [NUMBERS[0], NUMBERS[1], NUMBERS[0], NUMBERS[0]]


def test_one_bad_line_records_nothing_and_every_bad_line_is_listed(registry) -> None:
    data = _csv(
        f"{NUMBERS[2]},no_research,letter,2026-01-02",
        f"{BAD},no_research,letter,2026-01-02",
        f"{NUMBERS[3]},no_spam,letter,2026-01-02",
        f"{NUMBERS[4]},no_research,fax,2026-01-02",
        f"{NUMBERS[5]},no_research,letter,2026-02-30",
        f"{NUMBERS[6]},no_research,letter,2999-01-01",
        f"{NUMBERS[7]},no_research",
        "",
        f"{NUMBERS[8]},{NUMBERS[9]},letter,2026-01-02",
    )
    with pytest.raises(ImportRejected) as caught:
        import_choices(registry, data)
    rejected = dict(caught.value.report.rejected)
    assert sorted(rejected) == [2, 3, 4, 5, 6, 7, 9]
    assert "modulus 11" in rejected[2] and "future" in rejected[6]
    assert "must be one of" in rejected[3] and "columns" in rejected[7]
    assert not any(n in reason for n in [*NUMBERS, BAD] for reason in rejected.values())
    assert registry.history(NUMBERS[2]) == []  # the good line was not recorded either


def test_a_proxy_without_authority_is_named_by_its_line(registry) -> None:
    data = _csv(
        f"{NUMBERS[10]},no_research,letter,2026-01-02",
        f"{NUMBERS[11]},no_research,proxy,2026-01-02,lpa,LPA-NOT-RECORDED",
    )
    with pytest.raises(ImportRejected) as caught:
        import_choices(registry, data)
    assert [n for n, _ in caught.value.report.rejected] == [2]
    assert registry.history(NUMBERS[10]) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_parse_rejects_exactly_the_bad_lines(flags) -> None:
    lines = [
        f"{NUMBERS[i % len(NUMBERS)] if ok else BAD},no_planning,online,2026-01-02"
        for i, ok in enumerate(flags)
    ]
    requests, line_numbers, report = parse(_csv(*lines))
    assert [n for n, _ in report.rejected] == [i + 1 for i, ok in enumerate(flags) if not ok]
    assert line_numbers == [i + 1 for i, ok in enumerate(flags) if ok]
    assert len(requests) == sum(flags)


def test_cli_import_all_or_nothing(opstore, tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv(f"{NUMBERS[12]},no_research,letter,2026-01-02", f"{BAD},x,y,z"))
    refused = runner.invoke(app, ["choices", "import", str(bad), "--home", str(home), "--json"])
    assert refused.exit_code == exit_codes.INVALID_LINES
    doc = json.loads(refused.stdout)
    assert doc["recorded"] == 0 and [r["line"] for r in doc["rejected"]] == [2]
    assert "line 2:" in refused.stderr and BAD not in refused.stderr + refused.stdout
    good = tmp_path / "good.csv"
    good.write_bytes(_csv(f"{NUMBERS[12]},no_research,letter,2026-01-02"))
    done = runner.invoke(app, ["choices", "import", str(good), "--home", str(home), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["recorded"] == 1
    # Read back through the registry: showing a person's choices is an operator's look-up.
    with ChoicesRegistry.open(Home.at(home)) as registry:
        assert registry.current(NUMBERS[12]).no_research
    missing = runner.invoke(app, ["choices", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == exit_codes.FILES and "does not exist" in missing.stderr


def test_http_import_all_or_nothing(opstore, tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    with ChoicesRegistry.open(home) as registry:
        identity = IdentityService.open(registry, home.root, config=IdentityConfig(min_seconds=0))
        api = FastAPI()
        router = make_router(registry, identity, notify=lambda n, e: None, gp_token="gp-secret")
        api.include_router(router, prefix="/c")
        auth = {"Authorization": "Bearer gp-secret", "Content-Type": "text/csv"}
        body = _csv(f"{NUMBERS[13]},no_commercial,letter,2026-01-02", f"{BAD},no_research,x,y")
        with TestClient(api) as http:
            assert http.post("/c/import", content=body).status_code == 401
            refused = http.post("/c/import", content=body, headers=auth)
            assert refused.status_code == 422
            detail = refused.json()["detail"]
            assert [r["line"] for r in detail["rejected"]] == [2] and detail["recorded"] == 0
            assert BAD not in refused.text
            assert registry.history(NUMBERS[13]) == []
            good = _csv(f"{NUMBERS[13]},no_commercial,letter,2026-01-02")
            done = http.post("/c/import", content=good, headers=auth)
            assert done.status_code == 200 and done.json() == {"lines": 1, "recorded": 1}
            assert registry.current(NUMBERS[13]).no_commercial
            assert "/c/import" in http.get("/openapi.json").json()["paths"]


def test_dates_are_whole_days_or_moments(registry) -> None:
    requests, _lines, report = parse(
        _csv(
            f"{NUMBERS[14]},no_research,letter,2026-01-02",
            f"{NUMBERS[15]},no_research,letter,2026-01-02T10:30:00+00:00",
        )
    )
    assert not report.rejected
    assert requests[0].at is not None and requests[0].at.date() == date(2026, 1, 2)
