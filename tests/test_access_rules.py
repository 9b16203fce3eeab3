"""Invariants of the application rules and the credential hashing, checked with Hypothesis."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from confide.access import credentials, rules
from confide.access.model import (
    LegalBasis,
    ProjectStatus,
    Purpose,
    RecipientKind,
    effective_status,
    parse_purpose,
)
from confide.hub.records import RECORD_SCHEMAS

purposes = st.sampled_from(list(Purpose))
recipients = st.sampled_from(list(RecipientKind))
bases = st.sampled_from(list(LegalBasis))


@given(purposes, recipients, bases)
def test_insurance_and_marketing_never_pass(p: Purpose, r: RecipientKind, b: LegalBasis) -> None:
    verdict = rules.why_not_allowed(p, r, b)
    if p in (Purpose.INSURANCE, Purpose.MARKETING):
        assert verdict is not None and "never" in verdict[0]


@given(purposes, recipients, bases)
def test_an_allowed_combination_fits_every_table(
    p: Purpose, r: RecipientKind, b: LegalBasis
) -> None:
    verdict = rules.why_not_allowed(p, r, b)
    fits = (
        p in rules.PURPOSE_RECIPIENTS
        and r in rules.PURPOSE_RECIPIENTS[p]
        and p in rules.LEGAL_BASES[b].purposes
        and r in rules.LEGAL_BASES[b].recipients
    )
    assert (verdict is None) == fits
    if verdict is not None:
        reason, hint = verdict
        assert reason.endswith(".") and hint


def test_every_acceptable_purpose_has_some_legal_basis_for_each_allowed_recipient() -> None:
    for purpose, kinds in rules.PURPOSE_RECIPIENTS.items():
        for kind in kinds:
            assert any(rules.why_not_allowed(purpose, kind, b) is None for b in LegalBasis)


def test_the_refused_purposes_are_still_words_the_api_accepts() -> None:
    assert parse_purpose("Insurance") is Purpose.INSURANCE
    assert parse_purpose("marketing") is Purpose.MARKETING
    assert set(rules.REFUSED_PURPOSES) | set(rules.PURPOSE_RECIPIENTS) == set(Purpose)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, list[str]]:
    tables = draw(st.lists(st.sampled_from(sorted(RECORD_SCHEMAS)), min_size=1, unique=True))
    out = {}
    for table in tables:
        names = [n for n in RECORD_SCHEMAS[table].names if n != rules.PATIENT_KEY]
        out[table] = draw(st.lists(st.sampled_from(names), min_size=1))
    return out


@given(requests())
def test_checked_datasets_keep_exactly_what_was_asked_in_schema_order(
    asked: dict[str, list[str]],
) -> None:
    checked = rules.checked_datasets(asked)
    assert set(checked) == set(asked)
    for table, columns in checked.items():
        assert set(columns) == set(asked[table])
        order = list(RECORD_SCHEMAS[table].names)
        assert list(columns) == sorted(columns, key=order.index)
    assert rules.checked_datasets({k: list(v) for k, v in checked.items()}) == checked


@given(st.text(max_size=300))
def test_a_name_made_from_any_title_is_usable(title: str) -> None:
    slug = rules.slug_from_title(title)
    assert rules.checked_slug(slug) == slug
    assert len(slug) <= rules.SLUG_MAX - 7  # room for a numeric suffix


@given(st.sampled_from(list(ProjectStatus)), st.dates(), st.dates())
def test_expiry_overrides_every_status_but_rejection(stored: ProjectStatus, expires, today) -> None:
    status = effective_status(stored, expires, today)
    if today > expires and stored is not ProjectStatus.REJECTED:
        assert status is ProjectStatus.EXPIRED
    else:
        assert status is stored


@settings(max_examples=15, deadline=None)
@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_secret_hashes_verify_only_their_secret(secret: str, other: str) -> None:
    stored = credentials.hash_secret(secret, n=2**8)
    assert credentials.verify_secret(secret, stored)
    assert credentials.verify_secret(other, stored) == (other == secret)


def test_hashes_are_salted_and_damaged_hashes_never_match() -> None:
    a, b = credentials.hash_secret("same", n=2**8), credentials.hash_secret("same", n=2**8)
    assert a != b
    for damaged in ("", "scrypt$x", "bcrypt$1$2$3$4$5", a.replace("scrypt", "plain")):
        assert not credentials.verify_secret("same", damaged)
