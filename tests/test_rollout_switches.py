"""Every switch stops extraction, ingest and releases at once, and resuming restores them:
the national pause, an area's pause and a practice's pause, through the Python API, the CLI
and HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from rollout_world import AREA, ODS, PILOT_START, nhs_numbers, write_export
from tre_world import BY_SEX, TreWorld, build
from typer.testing import CliRunner

from confide.access.seed import PEOPLE
from confide.cli.main import app as cli
from confide.practice import keys
from confide.practice.agent import extract
from confide.rollout.gate import RolloutStopped
from confide.rollout.model import Channel
from confide.rollout.notices import NoticeRegister
from confide.rollout.service import Rollout

runner = CliRunner()
OTHER = "B86001"  # the TRE world's practice, whose records are already in the store


@pytest.fixture
def tre(tmp_path: Path) -> TreWorld:
    made = build(tmp_path / "home", practices=1, patients=40)
    made.world.hub.enrol(ODS, "practice", keys.verify_key(made.home, ODS))
    numbers = nhs_numbers(6)
    write_export(tmp_path / "export", numbers)
    with NoticeRegister(made.home) as register:
        register.sent(ODS, numbers, Channel.LETTER, date.today() - timedelta(weeks=10))
    yield made
    made.close()


def _rollout(tre: TreWorld) -> Rollout:
    return Rollout.open(tre.home, tre.ledger)


def _extract(tre: TreWorld, export: Path):
    return extract(export, tre.home, tre.world.pseudonymiser.public_key(), source=ODS)


def _query(tre: TreWorld):
    return tre.service.run(tre.principal("researcher"), "demo-research", BY_SEX)


def _assert_stopped(tre: TreWorld, export: Path, submission: Path, why: str) -> None:
    with pytest.raises(RolloutStopped, match=why):
        _extract(tre, export)
    with pytest.raises(RolloutStopped, match=why):
        tre.world.hub.ingest(submission)
    outcome = _query(tre)
    assert outcome.status == "refused" and "paused" in (outcome.reason or "")
    assert outcome.result is None


def _assert_running(tre: TreWorld, export: Path, submission: Path) -> None:
    assert tre.world.hub.ingest(submission).status == "ingested"
    assert _extract(tre, export).counts["patients"] == 6
    assert _query(tre).status == "released"


def _ledger_actions(tre: TreWorld) -> list[str]:
    head = tre.ledger.head().size
    return [e.body["action"] for e in tre.ledger.decoded(0, head) if e.kind == "rollout"]


def test_the_national_pause_stops_all_three_and_resuming_restores_them(tre, tmp_path) -> None:
    export = tmp_path / "export"
    waiting = _extract(tre, export).path  # made before the pause, ingested during it
    rollout = _rollout(tre)
    rollout.pause("Consultation on the notice wording", role="operator")
    _assert_stopped(tre, export, waiting, "paused nationally")
    assert tre.world.hub.records.catalog()["sources"].keys() == {OTHER}
    rollout.resume("Consultation closed", role="operator")
    _assert_running(tre, export, waiting)
    assert _ledger_actions(tre) == ["national_paused", "national_resumed"]
    rollout.close()


@pytest.mark.parametrize("switch", ["area", "practice"])
def test_an_area_or_practice_pause_stops_all_three_and_resuming_restores_them(
    tre, tmp_path, switch
) -> None:
    export = tmp_path / "export"
    rollout = _rollout(tre)
    rollout.set_area(AREA, name="Pilot", wave=0, start_date=PILOT_START, role="operator")
    rollout.set_practice(ODS, "joined", role="practice", area=AREA)
    rollout.set_practice(OTHER, "joined", role="practice", area=AREA)
    tre.world.hub.ingest(_extract(tre, export).path)  # the practice's records are held
    waiting = _extract(tre, export).path
    if switch == "area":
        rollout.pause_area(AREA, "Local concerns raised", role="operator")
        _assert_stopped(tre, export, waiting, f"Area {AREA} is paused")
        rollout.resume_area(AREA, "Resolved with the local committee", role="operator")
    else:
        rollout.set_practice(ODS, "paused", role="practice", reason="Practice merger")
        _assert_stopped(tre, export, waiting, f"Source {ODS} has paused")
        rollout.set_practice(ODS, "joined", role="practice")
    _assert_running(tre, export, waiting)
    rollout.close()


def test_a_declined_practice_sends_nothing_and_its_submissions_are_refused(tre, tmp_path):
    rollout = _rollout(tre)
    rollout.set_area(AREA, name="Pilot", wave=0, start_date=PILOT_START, role="operator")
    rollout.set_practice(ODS, "joined", role="practice", area=AREA)
    made = _extract(tre, tmp_path / "export").path
    rollout.set_practice(ODS, "declined", role="practice")
    with pytest.raises(RolloutStopped, match="declined"):
        _extract(tre, tmp_path / "export")
    with pytest.raises(RolloutStopped, match="declined"):
        tre.world.hub.ingest(made)
    rollout.close()


def test_an_area_sends_nothing_before_its_published_start_date(tre, tmp_path) -> None:
    rollout = _rollout(tre)
    later = date.today() + timedelta(days=30)
    rollout.set_area(AREA, name="Wave 2", wave=2, start_date=later, role="operator")
    rollout.set_practice(ODS, "joined", role="practice", area=AREA)
    with pytest.raises(RolloutStopped, match=f"starts on {later.isoformat()}"):
        _extract(tre, tmp_path / "export")
    rollout.close()


def test_once_started_a_practice_that_never_joined_sends_nothing(tre, tmp_path) -> None:
    rollout = _rollout(tre)
    rollout.start(role="operator")
    with pytest.raises(RolloutStopped, match="has not joined"):
        _extract(tre, tmp_path / "export")
    rollout.close()


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output


def test_the_cli_pause_stops_all_three_and_resume_restores_them(tre, tmp_path) -> None:
    home, export = str(tre.home.root), str(tmp_path / "export")
    waiting = _extract(tre, tmp_path / "export").path
    org, _, email, _ = PEOPLE["researcher"]
    client_id, secret = tre.access.create_client(org, email)
    token = tre.access.issue_token(client_id, secret).access_token
    tre.close()  # the commands open the installation themselves

    def query() -> dict:
        _, out = _cli(
            "query", "run", BY_SEX, "--project", "demo-research",
            "--token", token, "--home", home, "--json",
        )  # fmt: skip
        assert out.startswith("{"), out
        return orjson.loads(out)

    assert _cli("rollout", "pause", "--reason", "Public concern", "--home", home)[0] == 0
    code, out = _cli("practice", "extract", export, "--source", ODS, "--home", home)
    assert code != 0 and "paused nationally" in out and "Traceback" not in out
    code, out = _cli("hub", "ingest", str(waiting), "--home", home, "--json")
    assert "paused nationally" in out
    assert query()["status"] == "refused"
    status = orjson.loads(_cli("rollout", "status", "--home", home, "--json")[1])
    assert status["national"] == {"paused": True, "reason": "Public concern", "since": status[
        "national"]["since"]}  # fmt: skip

    assert _cli("rollout", "resume", "--reason", "Questions answered", "--home", home)[0] == 0
    code, out = _cli("hub", "ingest", str(waiting), "--home", home, "--json")
    assert code == 0, out
    code, out = _cli("practice", "extract", export, "--source", ODS, "--home", home, "--json")
    assert code == 0, out
    assert query()["status"] == "released"


def test_a_held_output_cannot_be_approved_for_release_during_a_pause(tre) -> None:
    from tre_world import hold

    from confide.access.errors import Conflict

    held = hold(tre.service, tre.registry, tre.principal("researcher"), "demo-research",
                tre.numbers[0])  # fmt: skip
    rollout = _rollout(tre)
    rollout.pause("Incident", role="operator")
    with pytest.raises(Conflict, match="paused nationally"):
        tre.review.vote(tre.principal("output_checker_1"), held.id, True, "Looks safe")
    assert tre.store.query(held.id).status == "held_for_review"
    rollout.resume("Resolved", role="operator")
    tre.review.vote(tre.principal("output_checker_1"), held.id, True, "Looks safe")
    tre.review.vote(tre.principal("output_checker_2"), held.id, True, "Agreed")
    assert tre.store.query(held.id).status == "released"
    rollout.close()
