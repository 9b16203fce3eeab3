"""NHS number validation: the modulus 11 rule, checked against an independent statement of it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.common import nhs_number

digits = st.text(alphabet="0123456789", min_size=10, max_size=10)


def _reference_valid(number: str) -> bool:
    # Written from the rule itself: weights 10..2, 11 - (sum mod 11), 11 -> 0, 10 -> invalid.
    total = sum(int(number[i]) * (10 - i) for i in range(9))
    remainder = 11 - total % 11
    if remainder == 10:
        return False
    return (0 if remainder == 11 else remainder) == int(number[9])


def _reference_refused(number: str) -> bool:
    return len(set(number)) == 1 or int(number) < 101_000_000


@given(digits)
def test_validity_matches_the_rule(number: str) -> None:
    expected = _reference_valid(number) and not _reference_refused(number)
    assert nhs_number.is_valid(number) == expected


@pytest.mark.parametrize("digit", range(10))
def test_same_digit_placeholders_pass_the_check_but_are_refused(digit: int) -> None:
    number = str(digit) * 10
    assert _reference_valid(number)  # why the list is needed at all
    assert not nhs_number.is_valid(number)
    assert "placeholder" in (nhs_number.why_invalid(number) or "")
    assert not nhs_number.valid_mask(np.array([number], dtype="S10"))[0]


@given(st.integers(0, 100_999_999))
def test_never_issued_numbers_are_refused(value: int) -> None:
    number = f"{value:010d}"
    assert not nhs_number.is_valid(number)
    if _reference_valid(number) and len(set(number)) > 1:
        assert nhs_number.why_invalid(number) == "NHS number is from a range that was never issued"


@given(st.lists(digits, min_size=1, max_size=50))
def test_vectorised_check_agrees_with_scalar(numbers: list[str]) -> None:
    mask = nhs_number.valid_mask(np.array(numbers, dtype="S10"))
    assert mask.tolist() == [nhs_number.is_valid(n) for n in numbers]


@given(digits, st.integers(0, 9), st.integers(1, 9))
def test_any_single_digit_error_is_caught(number: str, position: int, shift: int) -> None:
    if not nhs_number.is_valid(number):
        return
    typo = list(number)
    typo[position] = str((int(typo[position]) + shift) % 10)
    assert not nhs_number.is_valid("".join(typo))


@given(digits, st.integers(0, 8))
def test_adjacent_transpositions_are_caught(number: str, position: int) -> None:
    if not nhs_number.is_valid(number) or number[position] == number[position + 1]:
        return
    swapped = list(number)
    swapped[position], swapped[position + 1] = swapped[position + 1], swapped[position]
    assert not nhs_number.is_valid("".join(swapped))


@given(st.text(max_size=14))
def test_anything_else_is_invalid_with_a_reason_that_does_not_echo_it(raw: str) -> None:
    reason = nhs_number.why_invalid(raw)
    assert (reason is None) == nhs_number.is_valid(raw)
    cleaned = nhs_number.normalise(raw)
    if reason is not None and cleaned and len(cleaned) >= 4:
        assert cleaned not in reason


def test_spaces_and_hyphens_are_accepted() -> None:
    assert nhs_number.is_valid("943 476 5919")
    assert nhs_number.is_valid("943-476-5919")
    assert not nhs_number.is_valid("9434765918")


def test_generated_numbers_are_valid_distinct_and_in_the_test_range() -> None:
    numbers = nhs_number.generate_test_numbers(50_000, np.random.default_rng(7))
    assert len(set(numbers.tolist())) == 50_000
    assert nhs_number.valid_mask(numbers.astype("S10")).all()
    assert all(n.startswith("999") for n in numbers.tolist())
