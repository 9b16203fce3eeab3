"""The patient's usage report: exactly their releases, each proved, and nothing learned by the
serving side about who asked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pytest
import typer
from factories import small_extract
from hypothesis import given, settings
from hypothesis import strategies as st
from operators import NOT_OPERATOR, add_operator
from pipeline_helpers import make_world
from release_helpers import apply_project, publish_release, releases_folder
from sqlalchemy import update
from typer.testing import CliRunner

from confide.choices.registry import ChoicesRegistry
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.ledger.commitments import commitment_for, erasure_commitment
from confide.ledger.entries import find_identifiers
from confide.ledger.log import Ledger
from confide.ledger.store import entries as entries_table
from confide.ledger.verify import TamperDetected
from confide.usage import cli as usage_cli
from confide.usage.choices import ChoiceLogger
from confide.usage.proofs import LogSnapshot
from confide.usage.report import (
    FolderReleaseFiles,
    is_member,
    membership_digest,
    parse_members,
    usage_report,
)
from confide.usage.salts import SaltStore


@dataclass
class Flow:
    home: Home
    world: object
    ledger: Ledger
    registry: ChoicesRegistry
    salts: SaltStore
    numbers: list[str]
    pseudonyms: list[str]
    stranger: str
    at: dict[str, int]

    def report(self, number: str, files=None, ledger=None, **kw):
        return usage_report(
            number,
            pseudonymiser=self.world.pseudonymiser,
            ledger=ledger or self.ledger,
            releases_folder=files or releases_folder(self.home),
            choices=self.registry,
            salts=self.salts,
            **kw,
        )


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    root = tmp_path_factory.mktemp("usage")
    world = make_world(root)
    extract = small_extract(patients=12, seed=7)
    world.hub.ingest(world.submit(extract))
    numbers = extract.table("patients").column("nhs_number").to_pylist()
    pseudonyms = world.pseudonymiser.pseudonyms_for(numbers)
    assert all(pseudonyms)
    home = world.home
    ledger = Ledger.open(home)
    registry = ChoicesRegistry.open(home)
    salts = SaltStore.open(home)
    registry.listeners.append(ChoiceLogger(ledger, salts))
    folder = releases_folder(home)

    # Person 0 opts out of research; person 1 opts out and later back in.
    registry.set(numbers[0], {"no_research": True}, "online")
    registry.set(numbers[1], {"no_research": True}, "letter")
    registry.set(numbers[1], {"no_research": False}, "online")

    everyone = set(range(12))
    at = {}
    apply_project(ledger, "P-0001", "Diabetes outcomes")
    # research under the strict policy: person 0 excluded by choice.
    at["R-1"] = publish_release(
        ledger,
        folder,
        "R-1",
        contributors=[pseudonyms[i] for i in everyone - {0}],
        excluded=[pseudonyms[0]],
    )
    # planning for the NHS: everyone.
    at["R-2"] = publish_release(
        ledger,
        folder,
        "R-2",
        project_id="P-0002",
        purpose="planning",
        recipient_kind="nhs",
        contributors=[pseudonyms[i] for i in everyone],
    )
    # a small cohort (people 0, 2, 3) with nobody excluded.
    at["R-3"] = publish_release(
        ledger, folder, "R-3", contributors=[pseudonyms[i] for i in (0, 2, 3)], date="2025-04-01"
    )
    # the TRE never wrote its files: nobody can be told about it, and everyone is told so.
    at["R-4"] = publish_release(ledger, folder, "R-4", contributors=[], files=False)
    ledger.checkpoint()

    stranger = next(
        n for n in generate_test_numbers(40, np.random.default_rng(99)).tolist() if n not in numbers
    )
    yield Flow(home, world, ledger, registry, salts, numbers, pseudonyms, stranger, at)
    salts.close()
    registry.close()
    ledger.close()
    world.close()


def _ids(items) -> list[str]:
    return [i.release_id for i in items]


def test_the_report_lists_exactly_the_releases_that_used_or_excluded_the_person(flow) -> None:
    r0 = flow.report(flow.numbers[0])
    assert _ids(r0.included) == ["R-2", "R-3"]  # planning: person 0 opted out of research only
    assert _ids(r0.excluded) == ["R-1"]
    r2 = flow.report(flow.numbers[2])
    assert _ids(r2.included) == ["R-1", "R-2", "R-3"] and r2.excluded == []
    r5 = flow.report(flow.numbers[5])
    assert _ids(r5.included) == ["R-1", "R-2"] and r5.excluded == []
    for report in (r0, r2, r5):
        assert report.releases_checked == 4
        assert report.unchecked == ["R-4"]


def test_every_item_carries_a_verified_inclusion_proof(flow) -> None:
    report = flow.report(flow.numbers[0])
    head = cp.verify(report.checkpoint.text, flow.ledger.verifier)
    for item in report.included + report.excluded:
        proof = item.proof
        assert proof.index == flow.at[item.release_id]
        assert proof.size == head.size
        proof.verify(flow.ledger.verifier)
        # The same check with only the RFC pieces and what the item carries.
        merkle.verify_inclusion(
            proof.index, proof.size, merkle.leaf_hash(proof.leaf_input), proof.audit_path, head.root
        )
        body = json.loads(proof.leaf_input)["body"]
        assert body["release_id"] == item.release_id
        # And it is the very proof the log itself would give.
        assert flow.ledger.inclusion_proof(proof.index, proof.size)[1] == list(proof.audit_path)


def test_a_proof_that_was_tampered_with_fails(flow) -> None:
    item = flow.report(flow.numbers[2]).included[0]
    bad_path = type(item.proof)(
        item.proof.index,
        item.proof.size,
        item.proof.leaf_input.replace(b"R-1", b"R-9"),
        item.proof.audit_path,
        item.proof.checkpoint,
    )
    with pytest.raises(TamperDetected):
        bad_path.verify(flow.ledger.verifier)
    other_key = cp.Signer("someone.else/log", b"\x01" * 32).verifier
    with pytest.raises(TamperDetected):
        item.proof.verify(other_key)


def test_a_person_in_no_release_gets_an_empty_report(flow) -> None:
    report = flow.report(flow.stranger)
    assert report.empty and report.included == [] and report.excluded == []
    assert report.own_entries == [] and report.releases_checked == 4


def test_own_choice_changes_are_recognised_by_commitment_and_proved(flow) -> None:
    one = flow.report(flow.numbers[1]).own_entries
    assert [(e.body["set"], e.body["cleared"], e.body["channel"]) for e in one] == [
        (["no_research"], [], "letter"),
        ([], ["no_research"], "online"),
    ]
    assert len({e.body["commitment"] for e in one}) == 2  # unlinkable to each other
    for e in one:
        e.proof.verify(flow.ledger.verifier)
    zero = flow.report(flow.numbers[0]).own_entries
    assert [e.body["channel"] for e in zero] == ["online"]
    assert not {e.proof.index for e in zero} & {e.proof.index for e in one}
    assert flow.report(flow.numbers[7]).own_entries == []  # changed nothing: nothing found


class RecordingFiles:
    def __init__(self, inner: FolderReleaseFiles) -> None:
        self.inner = inner
        self.served: list[tuple[str, str | None]] = []

    def read(self, name: str) -> bytes | None:
        data = self.inner.read(name)
        self.served.append((name, None if data is None else hashlib.sha256(data).hexdigest()))
        return data


class RecordingLedger:
    def __init__(self, inner: Ledger) -> None:
        self.inner = inner
        self.calls: list[tuple] = []

    @property
    def verifier(self):
        return self.inner.verifier

    def checkpoint(self):
        signed = self.inner.checkpoint()
        self.calls.append(("checkpoint", signed.text))
        return signed

    def entries(self, start: int, end: int):
        got = self.inner.entries(start, end)
        self.calls.append(("entries", start, end, hashlib.sha256(repr(got).encode()).hexdigest()))
        return got

    def __getattr__(self, name):  # any other request would show up as a failure here
        raise AssertionError(f"the report asked the ledger for {name}")


def test_the_serving_side_sees_the_same_requests_whoever_asks(flow) -> None:
    seen = {}
    askers = {
        "excluded once": flow.numbers[0],
        "in everything": flow.numbers[2],
        "in two": flow.numbers[5],
        "unknown person": flow.stranger,
    }
    for label, number in askers.items():
        files = RecordingFiles(FolderReleaseFiles(releases_folder(flow.home)))
        ledger = RecordingLedger(flow.ledger)
        flow.report(number, files=files, ledger=ledger)
        seen[label] = (files.served, ledger.calls)
    first = next(iter(seen.values()))
    assert all(v == first for v in seen.values())
    names = [n for n, _ in first[0]]
    assert names == [
        f"R-{i}.{p}" for i in range(1, 5) for p in ("contributors", "excluded", "salt")
    ]


def test_a_log_altered_under_its_checkpoint_is_refused(tmp_path) -> None:
    home = Home.at(tmp_path)
    with Ledger.open(home) as ledger:
        folder = releases_folder(home)
        publish_release(ledger, folder, "R-1", contributors=["x"])
        ledger.checkpoint()
        with ledger.store.engine.begin() as conn:
            conn.execute(
                update(entries_table)
                .where(entries_table.c.leaf_index == 0)
                .values(leaf_input=ledger.entries(0, 1)[0][1].replace(b"R-1", b"R-2"))
            )
        with pytest.raises(TamperDetected, match="do not hash"):
            LogSnapshot.take(ledger)


def test_bad_input_and_bad_files(flow, tmp_path) -> None:
    with pytest.raises(InvalidInput) as caught:
        flow.report("1234567890")
    assert "1234567890" not in str(caught.value)
    with pytest.raises(InvalidInput, match="whole number"):
        parse_members(b"\x00" * 31)
    with pytest.raises(InvalidInput, match="sorted"):
        parse_members(b"\x02" * 32 + b"\x01" * 32)
    files = FolderReleaseFiles(tmp_path)
    (tmp_path.parent / "outside.contributors").write_bytes(b"")
    assert files.read("../outside.contributors") is None
    assert files.read("missing.excluded") is None


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.binary(min_size=32, max_size=32), max_size=40),
    st.binary(min_size=32, max_size=32),
)
def test_membership_matches_set_membership(members, probe) -> None:
    data = b"".join(sorted(members))
    parsed = parse_members(data)
    assert len(parsed) == len(members)
    for m in list(members)[:5]:
        assert is_member(parsed, m)
    assert is_member(parsed, probe) == (probe in members)


def test_membership_digest_is_the_contract() -> None:
    assert membership_digest("R-1", "abc") == hashlib.sha256(b"R-1:abc").digest()


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 70), st.data())
def test_snapshot_proofs_equal_the_logs_own(tmp_path_factory, size, data) -> None:
    home = Home.at(tmp_path_factory.mktemp("snap"))
    with Ledger.open(home) as ledger:
        ledger.append_raw([bytes([i % 256, i // 256]) for i in range(size)])
        snapshot = LogSnapshot.take(ledger)
        for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4)):
            assert list(snapshot.proof(index).audit_path) == ledger.inclusion_proof(index)[1]


def test_the_usage_command(flow) -> None:
    app = typer.Typer()
    usage_cli.mount(app)
    runner = CliRunner()
    home = ["--home", str(flow.home.root)]
    operator = add_operator(flow.home.root)
    with Ledger.open(flow.home) as ledger:
        since = ledger.head().size

    def report(number: str, *extra: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["usage", "report", "--nhs-number", number, *extra, *home])

    out = report(flow.numbers[0], "--json", *operator)
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert [i["release_id"] for i in doc["included"]] == ["R-2", "R-3"]
    assert [i["release_id"] for i in doc["excluded"]] == ["R-1"]
    assert flow.numbers[0] not in out.stdout and flow.pseudonyms[0] not in out.stdout
    out = report(flow.numbers[2], *operator)
    assert out.exit_code == 0, out.output
    assert "Releases that used the data" in out.stdout and flow.numbers[2] not in out.stdout
    out = report("12345", *operator)
    assert out.exit_code == 2
    # Without the operator role: refused, nothing shown, nothing more logged.
    with Ledger.open(flow.home) as ledger:
        logged = ledger.head().size
    planner = [*operator[:1], NOT_OPERATOR, *operator[2:]]
    out = report(flow.numbers[0], "--json", *planner)
    assert out.exit_code == 5 and "Only operators" in out.output and "R-2" not in out.output
    with Ledger.open(flow.home) as ledger:
        assert ledger.head().size == logged
        lookups = [e for e in ledger.decoded(since, logged) if e.kind == "person_lookup"]
    assert len(lookups) == 3  # every look-up, even the refused NHS number, was logged first
    assert lookups[0].body["what"] == "usage_report" and lookups[0].body["reason"]
    for entry in lookups:
        assert not find_identifiers(entry.body) and flow.numbers[0] not in str(entry.body)
    assert report(flow.numbers[0]).exit_code == 2  # the options are required


def test_commitments_are_keyed_and_separated_by_kind() -> None:
    secret, other = b"\x07" * 32, b"\x08" * 32
    c = commitment_for(secret, "change-1")
    assert c == commitment_for(secret, "change-1", "choice_changed") and len(c) == 64
    assert c != commitment_for(other, "change-1")
    assert c != commitment_for(secret, "change-2")
    assert c != erasure_commitment(secret, "change-1")
    with pytest.raises(InvalidInput):
        commitment_for(b"short", "change-1")
    with pytest.raises(InvalidInput):
        commitment_for(secret, "change-1", "release")


def test_two_salt_stores_agree_on_a_new_persons_secret(tmp_path) -> None:
    home = Home.at(tmp_path)
    number = generate_test_numbers(1, np.random.default_rng(5)).tolist()[0]
    with SaltStore.open(home) as a, SaltStore.open(home) as b:
        assert a.existing(number) is None
        first = a.secret_for(number)
        assert b.secret_for(number) == first == b.existing(number)
        assert len(first) == 32
    for path in (tmp_path / "choices").glob("commitment-salts*"):
        assert number.encode() not in path.read_bytes()
