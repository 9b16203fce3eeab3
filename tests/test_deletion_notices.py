"""Erasure after a release: the release's recipients are told, through the public log."""

from __future__ import annotations

import csv

from confide.choices.model import Channel, Choice
from confide.common.home import Home
from confide.demo import credentials
from confide.demo.flow import run_demo
from confide.embedded import Installation
from confide.synth import generate


def test_erasing_someone_released_earlier_sends_a_deletion_notice(tmp_path) -> None:
    area = tmp_path / "area"
    generate(area, patients=600, seed=5, fmt="csv", trusts=1)
    home = Home.at(tmp_path / "home")
    run_demo(home, from_dir=area)
    with Installation.open(home) as parties:
        login = credentials.load(home)["demo-research"]
        token = parties.access.issue_token(login["client_id"], login["client_secret"])
        researcher = parties.access.authenticate(token.access_token)
        outcome = parties.service.run(
            researcher,
            "demo-research",
            "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex",
        )
        assert outcome.status == "released", outcome.reason

        practice = next(p for p in area.iterdir() if (p / "events.csv").exists())
        with (practice / "patients.csv").open(newline="") as fh:
            numbers = [row["nhs_number"] for row in csv.DictReader(fh)]
        held = {
            r[0]
            for r in parties.hub.records.connect()
            .execute("SELECT pseudonym FROM patients")
            .fetchall()
        }
        person = next(
            n
            for n, p in zip(numbers, parties.pseudonymiser.pseudonyms_for(numbers), strict=True)
            if p in held
        )
        parties.choices.set(person, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)

        entries = parties.ledger.decoded(0, parties.ledger.head().size)
        notices = [e for e in entries if e.kind == "deletion_notice"]
        assert len(notices) == 1
        assert notices[0].body["release_ids"] == [outcome.release_id]
        assert notices[0].body["project_id"] == "demo-research"
        erasure = [e for e in entries if e.kind == "erasure"][-1]
        assert notices[0].body["erasure_index"] == erasure.index
        assert person not in str(notices[0].body)
