"""Share nothing means erasure: every row of the person leaves every hub file, once per batch,
and the ledger shows it without naming anyone."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from factories import small_extract
from submit_helpers import write_extract

from confide.choices.model import ChangeRequest, Channel, Choice
from confide.common.home import Home
from confide.embedded import Installation


@pytest.fixture
def parties(tmp_path, opstore):
    with Installation.open(Home.at(tmp_path)) as installed:
        yield installed


def _submit(parties: Installation, extract) -> None:
    parties.hub.ingest(write_extract(parties, extract))


def _values_in_hub(parties: Installation) -> set[str]:
    found: set[str] = set()
    for path in (parties.hub.folder / "records").rglob("*.parquet"):
        found.update(pq.read_table(path).column("pseudonym").to_pylist())
    return found


def test_share_nothing_erases_from_every_source_and_is_logged(parties) -> None:
    gp = small_extract(patients=30, seed=21)
    _submit(parties, gp)
    _submit(parties, small_extract(source="RR8", kind="trust", patients=30, seed=21))
    numbers = gp.table("patients").column("nhs_number").to_pylist()
    leaving = numbers[:3]
    pseudonyms = parties.pseudonymiser.pseudonyms_for(leaving)
    assert set(pseudonyms) <= _values_in_hub(parties)

    parties.choices.bulk_set(
        ChangeRequest(n, {Choice.SHARE_NOTHING: True}, Channel.ONLINE) for n in leaving
    )
    held = _values_in_hub(parties)
    assert not set(pseudonyms) & held
    assert set(parties.pseudonymiser.pseudonyms_for(numbers[3:])) <= held
    assert parties.erasures == [{"people": 3, "rows": parties.erasures[0]["rows"], "notices": 0}]
    assert parties.erasures[0]["rows"] > 0

    entries = parties.ledger.decoded(0, parties.ledger.head().size)
    erasures = [e for e in entries if e.kind == "erasure"]
    assert len(erasures) == 3
    assert len({e.body["commitment"] for e in erasures}) == 3
    for entry in entries:
        text = str(entry.body)
        assert not any(n in text for n in numbers)
        assert not any(p in text for p in pseudonyms)


def test_one_persons_erasure_entry_does_not_say_how_many_rows_they_had(parties) -> None:
    gp = small_extract(patients=20, seed=23)
    _submit(parties, gp)
    number = gp.table("patients").column("nhs_number").to_pylist()[0]
    parties.choices.set(number, {Choice.SHARE_NOTHING: True}, Channel.ONLINE)
    assert parties.erasures[-1]["people"] == 1 and parties.erasures[-1]["rows"] > 0
    entries = parties.ledger.decoded(0, parties.ledger.head().size)
    (erasure,) = [e for e in entries if e.kind == "erasure"]
    assert erasure.v == 2 and set(erasure.body) == {"commitment", "stores"}


def test_later_submissions_never_bring_them_back(parties) -> None:
    gp = small_extract(patients=20, seed=22)
    numbers = gp.table("patients").column("nhs_number").to_pylist()
    parties.choices.set(numbers[0], {Choice.SHARE_NOTHING: True}, Channel.LETTER)
    _submit(parties, gp)
    _submit(parties, small_extract(source="RR8", kind="trust", patients=20, seed=22))
    ours = parties.pseudonymiser.pseudonyms_for([numbers[0]])[0]
    assert ours is None or ours not in _values_in_hub(parties)
    assert len(_values_in_hub(parties)) == 19


def test_erasure_drops_the_tres_cohorts_derived_from_the_store(parties) -> None:
    from confide.access.seed import PEOPLE, seed_demo

    gp = small_extract(patients=30, seed=23)
    _submit(parties, gp)
    seed_demo(parties.access)
    org, _, email, _ = PEOPLE["researcher"]
    researcher = parties.access.principal_for(org, email)
    sql = "SELECT sex, count(DISTINCT patient_id) AS n FROM patients GROUP BY sex"
    assert parties.service.run(researcher, "demo-research", sql).status == "released"
    numbers = gp.table("patients").column("nhs_number").to_pylist()
    leaving = parties.pseudonymiser.pseudonyms_for(numbers[:2])
    cache = parties.tre_store.folder / "cache"

    def cached_pseudonyms() -> set[str]:
        found: set[str] = set()
        for path in cache.rglob("*.parquet"):
            table = pq.read_table(path)
            if "pseudonym" in table.column_names:
                found.update(table.column("pseudonym").to_pylist())
        return found

    assert set(leaving) <= cached_pseudonyms()
    parties.choices.bulk_set(
        ChangeRequest(n, {Choice.SHARE_NOTHING: True}, Channel.ONLINE) for n in numbers[:2]
    )
    assert not set(leaving) & cached_pseudonyms()
    # The same table again differs from the first by the two who left: a differencing risk,
    # so it waits for the output checkers (and the cohort is rebuilt to run it).
    again = parties.service.run(researcher, "demo-research", sql)
    assert again.status == "held_for_review"
    assert "differ" in (again.reason or "")
    assert not set(leaving) & cached_pseudonyms()  # rebuilt from the store without them
    assert cached_pseudonyms()
