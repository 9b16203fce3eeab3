"""The entry schema and the identifier scanner: nothing identifying reaches the log."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.common.home import Home
from confide.common.nhs_number import check_digit, is_valid
from confide.ledger import entries
from confide.ledger.log import Ledger

DIGEST = "0f" * 32
VALID_NHS = "9434765919"

EXAMPLES = {
    "submission_ingested": {
        "submission_id": "sub-2025-01-A81001-0001",
        "source": "A81001",
        "digest": DIGEST,
        "records": 1200,
        "quarantined": 3,
    },
    "choice_changed": {
        "commitment": DIGEST,
        "set": ["no_research"],
        "cleared": [],
        "channel": "online",
    },
    "project_applied": {
        "project_id": "P-0007",
        "organisation": "University of Leeds",
        "title": "Statin use and dementia",
        "purpose": "research",
        "recipient_kind": "academic",
        "legal_basis": "art6_1e_art9_2j",
        "datasets": ["gp_events", "hes_apc"],
    },
    "project_approved": {"project_id": "P-0007", "approved_by": "iag", "expires": "2027-03-31"},
    "query_run": {
        "project_id": "P-0007",
        "query_id": "q-91",
        "query_digest": DIGEST,
        "mode": "rounding",
        "sql": "SELECT sex, count(*) AS n\nFROM patients GROUP BY sex",
    },
    "review_vote": {
        "project_id": "P-0007",
        "output_id": "o-91",
        "vote": "approve",
        "order": 1,
        "reason": "No cell below the threshold.",
    },
    "output_checked": {
        "project_id": "P-0007",
        "output_id": "o-91",
        "outcome": "passed",
        "method": "sdc_round5",
        "cells_suppressed": 4,
    },
    "release": {
        "release_id": "R-0003",
        "project_id": "P-0007",
        "organisation": "University of Leeds",
        "purpose": "research",
        "recipient_kind": "academic",
        "legal_basis": "art6_1e_art9_2j",
        "data_form": "aggregate",
        "datasets": ["gp_events"],
        "patients": 51234,
        "opt_outs_applied": True,
        "date": "2025-02-01",
    },
    "refusal": {"subject": "project", "ref": "P-0008", "reason": "Insurance is never allowed."},
    "erasure": {"commitment": DIGEST, "stores": ["hub", "tre"]},
    "deletion_notice": {
        "notice_id": "N-1",
        "project_id": "P-0007",
        "organisation": "University of Leeds",
        "release_ids": ["R-0003"],
        "erasure_index": 17,
    },
    "key_rotation": {"party": "pseudonymiser", "key_kind": "hmac", "key_id": "k-2025-02"},
    "person_lookup": {
        "what": "usage_report",
        "organisation": "service-desk",
        "operator": "a1b2c3d4e5f6",
        "reason": "subject access request",
    },
    "rollout": {"action": "notices", "subject": "A81001", "week": "2025-02-03", "sent": 120},
}


def test_every_kind_has_an_example_that_validates() -> None:
    assert set(EXAMPLES) == set(entries.KINDS)
    for kind, body in EXAMPLES.items():
        entries.validate(kind, body)
        assert entries.find_identifiers(body) == []


def test_canonical_bytes_are_stable() -> None:
    a = entries.encode("query_run", EXAMPLES["query_run"], "2025-01-01T00:00:00Z")
    b = entries.encode(
        "query_run", dict(reversed(EXAMPLES["query_run"].items())), "2025-01-01T00:00:00Z"
    )
    assert a == b
    assert a.startswith(b'{"at":"2025-01-01T00:00:00Z","body":{"mode"')
    assert b'"kind":"query_run","v":2}' in a
    assert entries.decode(4, a).body == EXAMPLES["query_run"]


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ({"note": VALID_NHS}, "NHS number"),
        ({"note": "943 476 5919"}, "NHS number"),
        ({"note": "patient 943-476-5919 opted out"}, "NHS number"),
        ({"x": [{"y": ["a", f"ref {VALID_NHS}"]}]}, "NHS number"),
        ({"n": int(VALID_NHS)}, "NHS number"),
        ({"where": "LS1 4AP"}, "postcode"),
        ({"where": "lives at ls14ap now"}, "postcode"),
        ({"birth_date": "1970-01-01"}, "date of birth"),
        ({"DOB": "01/01/1970"}, "date of birth"),
        ({"date_of_birth": "x"}, "date of birth"),
        ({"nhs_number": "x"}, "identifier"),
        ({"pseudonym": "x"}, "identifier"),
        ({"postcode": "LS1"}, "identifier"),
    ],
)
def test_scanner_finds_identifiers(body, found) -> None:
    problems = entries.find_identifiers(body)
    assert problems and found in problems[0]
    for p in problems:  # findings never repeat the value
        assert VALID_NHS not in p and "4AP" not in p.upper()


@pytest.mark.parametrize(
    "body",
    [
        {"note": "9434765918"},  # fails modulus 11
        {"note": "94347659190"},  # eleven digits: not an NHS number
        {"digest": "9434765919" + "ab" * 27},  # a hash that happens to contain ten digits
        {"district": "LS1"},
        {"date": "1970-01-01"},
        {"count": 12345},
    ],
)
def test_scanner_leaves_clean_bodies_alone(body) -> None:
    assert entries.find_identifiers(body) == []


@settings(max_examples=100, deadline=None)
@given(
    # Stems whose number is valid: a check digit exists and it is not a known placeholder.
    st.integers(10**8, 10**9 - 1).filter(
        lambda n: check_digit(str(n)) is not None and is_valid(f"{n}{check_digit(str(n))}")
    ),
    st.text(alphabet="abc .,;:", max_size=10),
    st.sampled_from(["", " ", "-"]),
)
def test_any_valid_nhs_number_is_found_anywhere(stem: int, prefix: str, sep: str) -> None:
    number = f"{stem}{check_digit(str(stem))}"
    shown = sep.join([number[:3], number[3:6], number[6:]])
    assert entries.find_identifiers({"reason": f"{prefix}{shown}."}) != []


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("unknown_kind", {}, "not a kind"),
        ("query_run", {**EXAMPLES["query_run"], "extra": "x"}, "no field"),
        ("query_run", {"project_id": "P1", "query_id": "q"}, "needs the field"),
        ("query_run", {**EXAMPLES["query_run"], "query_digest": "xyz"}, "sha256 hex"),
        ("release", {**EXAMPLES["release"], "patients": -1}, "count"),
        ("release", {**EXAMPLES["release"], "data_form": "raw"}, "data_form"),
        ("release", {**EXAMPLES["release"], "date": "2025-02-30"}, "date"),
        ("refusal", {**EXAMPLES["refusal"], "reason": f"person {VALID_NHS}"}, "identifier"),
    ],
)
def test_bad_bodies_are_refused(kind, body, message) -> None:
    with pytest.raises(entries.EntryRejected, match=message):
        entries.validate(kind, body)


def test_ledger_refuses_identifying_entries_and_appends_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CONFIDE_DATABASE_URL", raising=False)
    with Ledger.open(Home.at(tmp_path)) as ledger:
        good = ("query_run", EXAMPLES["query_run"])
        bad = ("refusal", {**EXAMPLES["refusal"], "reason": "postcode LS1 4AP"})
        with pytest.raises(entries.EntryRejected, match="Entry 2 of 2") as err:
            ledger.append_many([good, bad])
        assert "LS1" not in str(err.value)
        assert ledger.head().size == 0
        for kind, body in EXAMPLES.items():
            ledger.append(kind, body)
        for entry in ledger.decoded(0, 100):
            assert entries.find_identifiers(entry.body) == []
    raw = (tmp_path / "ledger" / "ledger.db").read_bytes()
    assert VALID_NHS.encode() not in raw and b"4AP" not in raw


def test_entries_of_an_earlier_version_still_validate_under_it() -> None:
    v1 = {"project_id": "P-0007", "query_id": "q-1", "query_digest": DIGEST}
    entries.validate("query_run", v1, 1)
    with pytest.raises(entries.EntryRejected, match="needs the field 'mode'"):
        entries.validate("query_run", v1)  # the current version asks for more
    with pytest.raises(entries.EntryRejected, match="no field"):
        entries.validate("query_run", EXAMPLES["query_run"], 1)  # v1 had no query text
    with pytest.raises(entries.EntryRejected, match="no version 7"):
        entries.validate("query_run", v1, 7)
    assert entries.version_of("query_run") == 2 and entries.version_of("release") == 1


def test_erasure_entries_carry_no_row_count() -> None:
    """A row count in a public erasure entry is a fact about one person: version 2 refuses it,
    while entries written under version 1 (which had it) still validate as what they were."""
    counted = {**EXAMPLES["erasure"], "rows": 311}
    with pytest.raises(entries.EntryRejected, match="no field"):
        entries.validate("erasure", counted)
    entries.validate("erasure", counted, 1)
    assert entries.version_of("erasure") == 2
    assert "rows" not in entries.ENTRY_SCHEMAS["erasure"]


@pytest.mark.parametrize(
    "sql, ok",
    [
        ("SELECT 1", True),
        ("SELECT *\n\tFROM events", True),
        ("x" * entries.SQL_MAX, True),
        ("x" * (entries.SQL_MAX + 1), False),
        ("", False),
        ("SELECT '\x00'", False),
    ],
)
def test_query_text_rules(sql: str, ok: bool) -> None:
    body = {**EXAMPLES["query_run"], "sql": sql}
    if ok:
        entries.validate("query_run", body)
    else:
        with pytest.raises(entries.EntryRejected):
            entries.validate("query_run", body)


def test_query_text_with_an_identifier_is_refused() -> None:
    body = {**EXAMPLES["query_run"], "sql": "SELECT 1 WHERE 'LS2 7UE' = 'LS2 7UE'"}
    with pytest.raises(entries.EntryRejected, match="postcode"):
        entries.validate("query_run", body)
