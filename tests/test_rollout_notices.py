"""Notices: every channel says what is collected, the four choices, how and by when; letters
are PDFs printable in a practice's batch; emails and NHS App messages go through a
Notify-shaped notifier; the log gets counts per practice and week, never a person."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from rollout_world import ODS, RolloutWorld, nhs_numbers
from typer.testing import CliRunner

from confide.cli.main import app as cli
from confide.common.errors import InvalidInput, NotFound
from confide.common.home import Home
from confide.ledger.entries import find_identifiers
from confide.rollout import letters, wording
from confide.rollout.figures import public_figures
from confide.rollout.letters import Recipient
from confide.rollout.model import Channel, NoticeStatus, Resolution
from confide.rollout.notices import NoticeRegister, week_of
from confide.rollout.notify import OutboxNotifier, notice_status
from confide.rollout.sending import read_recipients, send

runner = CliRunner()
DAY = date(2025, 3, 3)


@pytest.fixture
def world(tmp_path: Path, opstore: str):
    made = RolloutWorld.open(tmp_path / "home")
    yield made
    made.close()


def test_every_notice_says_what_the_four_choices_how_and_by_when() -> None:
    text = "\n".join(wording.paragraphs("Leeds Road Surgery", DAY, 8))
    for needed in ("What is collected", "Share nothing", "No research", "No planning",
                   "No commercial use", "How to choose", "NHS App", "27 April 2025"):  # fmt: skip
        assert needed in text
    assert wording.deadline(DAY, 8) == DAY + timedelta(weeks=8) - timedelta(days=1)


def test_a_letter_is_a_pdf_and_a_batch_has_a_page_per_patient() -> None:
    numbers = nhs_numbers(3)
    people = [
        Recipient(n, f"Patient {i}", ("1 High Street", "Leeds")) for i, n in enumerate(numbers)
    ]
    one = letters.letter_pdf(people[0], "Leeds Road Surgery", DAY, 8)
    batch = letters.batch_pdf(people, "Leeds Road Surgery", DAY, 8)
    assert one.startswith(b"%PDF") and batch.startswith(b"%PDF")
    assert b"/Count 1" in one and b"/Count 3" in batch  # one page per patient
    odd = Recipient(numbers[0], "Zoë Ł. 王", ("Flat 1",))  # characters the font lacks
    assert letters.letter_pdf(odd, "Surgery", DAY, 8).startswith(b"%PDF")


def test_sending_records_each_notice_and_the_outbox_masks_destinations(world, tmp_path) -> None:
    numbers = nhs_numbers(4)
    rows = [
        "nhs_number,name,address,email,channel",
        f"{numbers[0]},Ann,1 Road;Leeds,,letter",
        f"{numbers[1]},Bob,,bob@example.org,email",
        f"{numbers[2]},Cy,,,nhs_app",
        "1234567890,Bad,,,letter",  # not an NHS number
        f"{numbers[3]},Dee,,,email",  # email without an address
    ]
    csv = tmp_path / "recipients.csv"
    csv.write_text("\n".join(rows) + "\n")
    people, bad = read_recipients(csv)
    assert bad == [5, 6] and len(people) == 3
    outbox = tmp_path / "outbox"
    sent = send(world.home, ODS, people, OutboxNotifier(outbox), practice_name="Surgery", weeks=8,
                on=DAY)  # fmt: skip
    assert dict(sent.counts) == {"letter": 1, "email": 1, "nhs_app": 1}
    assert sent.batch is not None and sent.batch.read_bytes().startswith(b"%PDF")
    messages = [json.loads(p.read_text()) for p in outbox.glob("*.json")]
    assert {m["channel"] for m in messages} == {"email", "nhs_app"}
    dumped = json.dumps(messages)
    assert "bob@example.org" not in dumped and not any(n in dumped for n in numbers)
    assert all("Share nothing" in m["text"] for m in messages)
    with NoticeRegister(world.home) as register:
        assert set(register.records(ODS)) == set(numbers[:3])


def test_notify_statuses_map_to_notice_statuses() -> None:
    assert notice_status("delivered") is NoticeStatus.DELIVERED
    assert notice_status("permanent-failure") is NoticeStatus.UNDELIVERABLE
    assert notice_status("returned-letter") is NoticeStatus.RETURNED
    assert notice_status("sending") is None


def test_the_register_refuses_what_it_cannot_act_on(world) -> None:
    number = nhs_numbers(1)[0]
    with NoticeRegister(world.home) as register:
        with pytest.raises(NotFound):
            register.status(ODS, number, NoticeStatus.RETURNED, DAY)
        with pytest.raises(InvalidInput) as bad:
            register.sent(ODS, ["9990000000"], Channel.LETTER, DAY)
        assert "9990000000" not in bad.value.message
        register.sent(ODS, [number], Channel.LETTER, DAY)
        with pytest.raises(InvalidInput, match="nothing to resolve"):
            register.resolve(ODS, number, Resolution.ADDRESS_CONFIRMED, DAY)
        # A second notice does not move the first date on.
        register.sent(ODS, [number], Channel.EMAIL, DAY + timedelta(days=20))
        assert register.records(ODS)[number].sent_on == DAY


def test_the_log_gets_counts_per_practice_and_week_never_a_person(world, tmp_path) -> None:
    numbers = nhs_numbers(5)
    with NoticeRegister(world.home) as register:
        register.sent(ODS, numbers[:3], Channel.LETTER, DAY)
        register.sent(ODS, numbers[3:], Channel.EMAIL, DAY + timedelta(days=8))
        register.status(ODS, numbers[0], NoticeStatus.RETURNED, DAY + timedelta(days=4))
        register.status(ODS, numbers[1], NoticeStatus.DELIVERED, DAY + timedelta(days=2))
        weeks = register.weekly_counts(ODS)
    world.rollout.publish_notices(ODS, weeks)
    entries = [
        e for e in world.ledger.decoded(0, world.ledger.head().size)
        if e.kind == "rollout" and e.body["action"] == "notices"
    ]  # fmt: skip
    bodies = sorted((e.body for e in entries), key=lambda b: b["week"])
    assert bodies == [
        {"action": "notices", "subject": ODS, "week": week_of(DAY).isoformat(), "sent": 3,
         "delivered": 1, "returned": 1, "undeliverable": 0},
        {"action": "notices", "subject": ODS, "week": week_of(DAY + timedelta(days=8)).isoformat(),
         "sent": 2, "delivered": 0, "returned": 0, "undeliverable": 0},
    ]  # fmt: skip
    assert all(find_identifiers(b) == [] for b in bodies)
    figures = public_figures(world.rollout.store)
    assert figures["practices"][0]["notices"] == {"sent": 5, "delivered": 1, "returned": 1}


def test_the_practice_manager_sends_records_returns_and_resolves_from_the_cli(tmp_path) -> None:
    home = str(tmp_path / "home")
    numbers = nhs_numbers(3)
    csv = tmp_path / "r.csv"
    csv.write_text("nhs_number,name,address\n" + "".join(f"{n},P,1 Road\n" for n in numbers))
    result = runner.invoke(cli, ["rollout", "notices", "send", "--source", ODS, "--recipients",
                                 str(csv), "--home", home, "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == {"letter": 3}
    back = tmp_path / "back.txt"
    back.write_text(numbers[0] + "\n")
    result = runner.invoke(cli, ["rollout", "notices", "returned", "--source", ODS,
                                 "--nhs-numbers", str(back), "--home", home])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["rollout", "notices", "resolve", "--source", ODS,
                                 "--nhs-numbers", str(back), "--home", home])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert numbers[0] not in result.output
    missing = tmp_path / "missing.txt"
    missing.write_text(numbers[1] + "\n" + nhs_numbers(1, seed=99)[0] + "\n")
    result = runner.invoke(cli, ["rollout", "notices", "returned", "--source", ODS,
                                 "--nhs-numbers", str(missing), "--home", home])  # fmt: skip
    assert result.exit_code == 3 and "line 2" in result.output and "Traceback" not in result.output
    with NoticeRegister(Home.at(home)) as register:  # all or nothing: the first is unchanged
        assert register.records(ODS)[numbers[1]].status is NoticeStatus.SENT


def test_the_agent_says_how_many_it_held_back(tmp_path) -> None:
    from rollout_world import write_export

    world = RolloutWorld.open(tmp_path / "home")
    numbers = nhs_numbers(4)
    export = write_export(tmp_path / "export", numbers)
    with NoticeRegister(world.home) as register:
        register.sent(ODS, numbers[:1], Channel.LETTER, date.today() - timedelta(weeks=9))
        register.sent(ODS, numbers[1:2], Channel.LETTER, date.today())
    home = str(world.home.root)
    world.close()
    result = runner.invoke(cli, ["practice", "extract", str(export), "--source", ODS,
                                 "--home", home])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "3 patients held back" in text and "no notice 2, waiting 1, notice came back 0" in text
