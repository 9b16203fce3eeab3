"""The whole flow, end to end, as `confide demo` runs it: the backbone's promises hold."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from identifier_scan import leaks, source_identifiers
from typer.testing import CliRunner

from confide.cli.main import app
from confide.common.codes import TYPE1_DISSENT, TYPE1_WITHDRAWN
from confide.common.home import Home
from confide.embedded import Installation
from confide.synth import generate

runner = CliRunner()


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> dict:
    """A CSV area run through the demo once; tests share it (read-only)."""
    root = tmp_path_factory.mktemp("demo")
    area = root / "area"
    generate(area, patients=1500, seed=11, fmt="csv")
    home = root / "home"
    result = runner.invoke(
        app, ["demo", "--home", str(home), "--from", str(area), "--no-serve", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    return {"area": area, "home": home, "summary": summary}


def test_the_summary_reports_every_stage(flow) -> None:
    summary = flow["summary"]
    for key in ("patients", "events", "type1_excluded", "quarantined", "linkage_rate"):
        assert key in summary
    assert summary["patients"] > 1000
    assert summary["events"] > 10_000
    assert summary["type1_excluded"] > 0
    assert 0.8 < summary["linkage_rate"] <= 1.0
    assert {"extract", "pseudonymise", "ingest", "total"} <= set(summary["seconds"])


def test_no_identifier_from_the_source_is_anywhere_in_the_hub(flow) -> None:
    identifiers = source_identifiers(flow["area"])
    assert len(identifiers) > 3000  # the scan has something to look for
    assert leaks(flow["home"] / "hub", identifiers) == []


def test_the_scan_would_notice_a_leak(flow, tmp_path) -> None:
    identifiers = source_identifiers(flow["area"])
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "note.json").write_text(json.dumps({"x": sorted(identifiers)[0]}))
    assert leaks(planted, identifiers) != []


def _type1_people(area: Path) -> tuple[set[str], set[str]]:
    """NHS numbers of practice patients whose latest type 1 code is a dissent / a withdrawal."""
    numbers: dict[str, str] = {}
    latest: dict[str, tuple[str, bool]] = {}
    for folder in area.glob("*/"):
        if not (folder / "events.csv").exists():
            continue
        with (folder / "patients.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                numbers[row["patient_id"]] = row["nhs_number"]
        with (folder / "events.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                pair = (row["system"], row["code"])
                if pair in TYPE1_DISSENT or pair in TYPE1_WITHDRAWN:
                    dissent = pair in TYPE1_DISSENT
                    key = (row["date"], dissent)
                    if row["patient_id"] not in latest or key > latest[row["patient_id"]]:
                        latest[row["patient_id"]] = key
    dissent = {numbers[p] for p, (_, d) in latest.items() if d}
    withdrawn = {numbers[p] for p, (_, d) in latest.items() if not d}
    return dissent, withdrawn


def test_objectors_are_absent_from_every_source_and_withdrawals_present(flow) -> None:
    dissent, withdrawn = _type1_people(flow["area"])
    assert dissent and withdrawn
    with Installation.open(Home.at(flow["home"])) as parties:
        con = parties.hub.records.connect()
        held = {
            row[0]
            for table in ("patients", "events", "medications", "hospital_episodes", "registrations")
            for row in con.execute(f"SELECT DISTINCT pseudonym FROM {table}").fetchall()
        }
        objectors = parties.pseudonymiser.pseudonyms_for(sorted(dissent))
        assert not {p for p in objectors if p} & held
        returned = parties.pseudonymiser.pseudonyms_for(sorted(withdrawn))
        assert all(p in held for p in returned)
        # The practices' type 1 codes reached the choices registry as GP-channel choices.
        assert all(parties.choices.shares_nothing(sorted(dissent)))
        assert not any(parties.choices.shares_nothing(sorted(withdrawn)))


def test_every_ingest_is_in_the_ledger_and_the_log_verifies(flow, tmp_path) -> None:
    result = runner.invoke(
        app,
        ["ledger", "verify", "--home", str(flow["home"]), "--state", str(tmp_path / "s.json")],
    )
    assert result.exit_code == 0, result.output
    with Installation.open(Home.at(flow["home"])) as parties:
        kinds = [e.kind for e in parties.ledger.decoded(0, parties.ledger.head().size)]
    assert kinds.count("submission_ingested") == flow["summary"]["sources"]


def test_two_witnesses_cosign_the_demos_log(flow, tmp_path) -> None:
    """The demo runs two witnesses, each with its own folder and key; the log's latest
    checkpoint carries both cosignatures, and an auditor requiring both accepts it."""
    assert len(flow["summary"]["checkpoint_cosigned_by"]) == 2
    listed = runner.invoke(app, ["ledger", "witnesses", "--home", str(flow["home"]), "--json"])
    witnesses = json.loads(listed.stdout)["witnesses"]
    assert len(witnesses) == 2 and len({w["key"] for w in witnesses}) == 2
    for w in witnesses:
        assert (flow["home"] / w["folder"] / "cosigner.key").exists()
    args = [a for w in witnesses for a in ("--witness", w["key"])]
    state = str(tmp_path / "s.json")
    result = runner.invoke(
        app, ["ledger", "verify", "--home", str(flow["home"]), "--state", state, *args, "--json"]
    )
    assert result.exit_code == 0, result.output
    verified = json.loads(result.stdout)
    assert sorted(verified["cosigned_by"]) == sorted(flow["summary"]["checkpoint_cosigned_by"])
    with Installation.open(Home.at(flow["home"])) as parties:
        size = parties.ledger.head().size
    for w in witnesses:
        shown = runner.invoke(
            app, ["witness", "show", "--folder", str(flow["home"] / w["folder"]), "--json"]
        )
        (log,) = json.loads(shown.stdout)["logs"]
        assert log["cosigned_size"] == size and log["evidence"] == 0


def test_the_default_demo_runs_on_fhir(tmp_path) -> None:
    result = runner.invoke(
        app, ["demo", "--home", str(tmp_path), "--patients", "300", "--no-serve", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["patients"] > 200 and summary["events"] > 1000


def test_a_bad_from_folder_is_a_clear_error(tmp_path) -> None:
    result = runner.invoke(app, ["demo", "--home", str(tmp_path), "--from", str(tmp_path)])
    assert result.exit_code == 2
    assert "no source exports" in " ".join(result.output.split())
