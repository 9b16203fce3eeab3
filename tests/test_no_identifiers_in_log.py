"""After a flow with choice changes, type 1 codes, releases, an erasure and a deletion notice,
no ledger entry holds an NHS number, a date of birth, a postcode, a pseudonym or anything that
links entries to a person."""

from __future__ import annotations

import hashlib

import pytest
from factories import small_extract
from pipeline_helpers import make_world
from release_helpers import apply_project, publish_release, releases_folder

from confide.choices.model import ChangeRequest, Choice
from confide.choices.registry import ChoicesRegistry
from confide.ledger.entries import EntryRejected, decode, find_identifiers
from confide.ledger.log import Ledger
from confide.usage.choices import ChoiceLogger, erasure_body, log_choice_events
from confide.usage.salts import SaltStore


def _spellings(extract) -> dict[str, set[str]]:
    """Every way the extract's identifiers could be written into an entry."""
    people = extract.table("patients").to_pylist()
    found: dict[str, set[str]] = {"nhs": set(), "dob": set(), "postcode": set()}
    for p in people:
        n = p["nhs_number"]
        found["nhs"] |= {n, f"{n[:3]} {n[3:6]} {n[6:]}", f"{n[:3]}-{n[3:6]}-{n[6:]}"}
        d = p["birth_date"]
        text = d if isinstance(d, str) else d.isoformat()
        y, m, dd = text.split("-")
        found["dob"] |= {text, f"{y}{m}{dd}", f"{dd}/{m}/{y}", f"{dd}-{m}-{y}"}
        pc = p["postcode"]
        found["postcode"] |= {pc, pc.replace(" ", ""), pc.lower(), pc.replace(" ", "").lower()}
    return found


@pytest.fixture
def flow(tmp_path):
    world = make_world(tmp_path)
    home = world.home
    ledger = Ledger.open(home)
    registry = ChoicesRegistry.open(home)
    salts = SaltStore.open(home)
    registry.listeners.append(ChoiceLogger(ledger, salts))
    # Type 1 codes found by the pseudonymiser reach the registry, and so the log.
    world.pseudonymiser.type1_listeners.append(registry.apply_gp_codes)
    extract = small_extract(patients=15, seed=3, dissent=(4,), withdrawn=(5,))
    world.hub.ingest(world.submit(extract))
    numbers = extract.table("patients").column("nhs_number").to_pylist()
    yield world, ledger, registry, salts, extract, numbers
    salts.close()
    registry.close()
    ledger.close()
    world.close()


def test_no_identifier_reaches_any_log_entry(flow) -> None:
    world, ledger, registry, salts, extract, numbers = flow
    registry.set(numbers[0], {"no_research": True, "no_commercial": True}, "online")
    registry.set(numbers[1], {"no_planning": True}, "phone")
    registry.set(numbers[1], {"no_planning": False}, "online")
    # A bulk load records quietly, then logs all its events in one transaction.
    quiet = registry.bulk_set(
        [ChangeRequest(n, {"no_commercial": True}, "letter") for n in numbers[7:10]],
        notify=False,
    )
    assert len(log_choice_events(quiet, ledger, salts)) == 3
    assert log_choice_events([], ledger, salts) == []
    shared_nothing = registry.set(numbers[2], {"share_nothing": True}, "letter")

    pseudonyms = [p for p in world.pseudonymiser.pseudonyms_for(numbers) if p]
    folder = releases_folder(world.home)
    apply_project(ledger, "P-0001", "Asthma in young adults")
    publish_release(ledger, folder, "R-1", contributors=pseudonyms[1:], excluded=pseudonyms[:1])
    publish_release(ledger, folder, "R-2", contributors=pseudonyms, data_form="dp")
    erasure = ledger.append(
        "erasure",
        erasure_body(salts.secret_for(numbers[2]), shared_nothing.change_id, ["hub"]),
    )
    ledger.append(
        "deletion_notice",
        {
            "notice_id": "N-1",
            "project_id": "P-0001",
            "organisation": "University of Leeds",
            "release_ids": ["R-1", "R-2"],
            "erasure_index": erasure,
        },
    )

    size = ledger.head().size
    raw = ledger.entries(0, size)
    decoded = [decode(i, data) for i, data in raw]
    kinds = [e.kind for e in decoded]
    # The flow logged what it should: the type 1 codes, 4 changes and 3 quiet ones.
    assert kinds.count("choice_changed") >= 9
    assert {"release", "erasure", "deletion_notice", "project_applied"} <= set(kinds)
    assert "gp_code" in {e.body.get("channel") for e in decoded}

    needles = _spellings(extract)
    needles["pseudonym"] = set(pseudonyms)
    needles["membership digest"] = {
        hashlib.sha256(f"{r}:{p}".encode()).hexdigest() for r in ("R-1", "R-2") for p in pseudonyms
    }
    needles["commitment secret"] = {salts.secret_for(n).hex() for n in numbers}
    needles["registry change id"] = {e.change_id for n in numbers for e in registry.history(n)}
    for index, data in raw:
        text = data.decode()
        for what, values in needles.items():
            for value in values:
                assert value not in text, f"entry {index} holds a {what}"
        assert find_identifiers(decoded[index].body) == [], index

    # Every person's commitments differ from every other entry's: nothing links two entries.
    commitments = [e.body["commitment"] for e in decoded if "commitment" in e.body]
    assert len(commitments) == len(set(commitments))


def test_the_ledger_refuses_a_body_that_would_identify(flow) -> None:
    _world, ledger, _registry, _salts, _extract, numbers = flow
    before = ledger.head().size
    with pytest.raises(EntryRejected) as caught:
        ledger.append(
            "refusal", {"subject": "release", "ref": "R-9", "reason": f"person {numbers[0]}"}
        )
    assert numbers[0] not in str(caught.value)
    assert ledger.head().size == before


def test_forgetting_a_secret_leaves_entries_unrecognisable(flow) -> None:
    _world, _ledger, registry, salts, _extract, numbers = flow
    registry.set(numbers[6], {Choice.NO_RESEARCH: True}, "online")
    first = salts.secret_for(numbers[6])
    assert salts.forget(numbers[6]) is True
    assert salts.existing(numbers[6]) is None
    assert salts.secret_for(numbers[6]) != first  # a fresh secret: the old entries stay unlinked
    assert salts.forget("943 476 5919") is False
