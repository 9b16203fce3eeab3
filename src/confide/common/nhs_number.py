"""NHS numbers: the modulus 11 check, normalisation, and generation of test-range numbers.

An NHS number is 10 digits; the last is a check digit computed from the first nine with
weights 10..2: ``11 - (sum mod 11)``, where 11 becomes 0 and 10 means the number is invalid.
Numbers in 999 000 0000 - 999 999 9999 are reserved for testing.
"""

from __future__ import annotations

import numpy as np

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
TEST_RANGE_START = 9_990_000_000
TEST_RANGE_END = 9_999_999_999

# Numbers no person holds though they pass the modulus 11 check, refused wherever a number is
# read (docs/practices.md, "NHS numbers that are refused"):
# - placeholders: the ten same-digit numbers (0000000000 … 9999999999 all pass the check, and
#   systems use them for "unknown"); two people sharing one would be merged into one pseudonym;
# - never issued: 000 000 0000 - 010 099 9999, below every allocated range (NHS England and
#   the Isle of Man: 300-799 million blocks; Scotland's CHI numbers start with a date of birth,
#   DDMMYY, so from 010 100 0000; Northern Ireland 320 000 001 - 399 999 999; NHS Data
#   Dictionary, "NHS NUMBER", and NHS England's NHS number guidance).
PLACEHOLDERS = frozenset(str(d) * 10 for d in range(10))
NEVER_ISSUED = ((0, 100_999_999),)


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no valid number can end them."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    digit = 11 - (total % 11)
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def normalise(raw: str | None) -> str | None:
    """Strip the spaces and hyphens people and systems put in (``943 476 5919``)."""
    if raw is None:
        return None
    cleaned = raw.strip().replace(" ", "").replace("-", "")
    return cleaned or None


def is_valid(raw: str | None) -> bool:
    """True when ``raw`` (after normalising) is 10 digits with a correct check digit, and not
    a placeholder or a never-issued number."""
    number = normalise(raw)
    if number is None or len(number) != 10 or not number.isascii() or not number.isdigit():
        return False
    expected = check_digit(number[:9])
    return expected is not None and expected == int(number[9]) and not is_refused(number)


def is_refused(number: str) -> bool:
    """A well-formed number no person holds: a placeholder or from a never-issued range."""
    if number in PLACEHOLDERS:
        return True
    value = int(number)
    return any(low <= value <= high for low, high in NEVER_ISSUED)


def why_invalid(raw: str | None) -> str | None:
    """A reason a person can act on, or None when the number is valid. Never echoes it."""
    number = normalise(raw)
    if number is None:
        return "NHS number is missing"
    if not (number.isascii() and number.isdigit()):
        return "NHS number must contain only digits"
    if len(number) != 10:
        return f"NHS number must have 10 digits (this one has {len(number)})"
    expected = check_digit(number[:9])
    if expected is None or expected != int(number[9]):
        return "NHS number fails the modulus 11 check (a digit is probably mistyped)"
    if number in PLACEHOLDERS:
        return "NHS number is a placeholder (one digit repeated), not a person's number"
    if is_refused(number):
        return "NHS number is from a range that was never issued"
    return None


def valid_mask(numbers: np.ndarray) -> np.ndarray:
    """Vectorised check over an array of 10-character digit strings (bytes dtype ``S10``).

    Used on bulk paths (opt-out file checks, CSV extracts) where a Python loop is too slow.
    Anything that is not exactly ten ASCII digits is invalid.
    """
    arr = np.asarray(numbers, dtype="S10")
    raw = arr.view(np.uint8).reshape(-1, 10).astype(np.int16) - ord("0")
    digits_ok = ((raw >= 0) & (raw <= 9)).all(axis=1)
    lengths_ok = np.char.str_len(arr) == 10
    total = (raw[:, :9] * np.array(_WEIGHTS, dtype=np.int16)).sum(axis=1)
    check = 11 - (total % 11)
    check = np.where(check == 11, 0, check)
    well_formed = digits_ok & lengths_ok & (check != 10) & (check == raw[:, 9])
    same_digit = (raw == raw[:, :1]).all(axis=1)
    value = (raw.astype(np.int64) * (10 ** np.arange(9, -1, -1, dtype=np.int64))).sum(axis=1)
    never = np.zeros(len(arr), dtype=bool)
    for low, high in NEVER_ISSUED:
        never |= (value >= low) & (value <= high)
    return well_formed & ~same_digit & ~never


def _valid_in_block(first_three: int) -> np.ndarray:
    """Every valid NHS number whose first three digits are ``first_three`` (about 909,091)."""
    stems = np.arange(1_000_000, dtype=np.int64) + first_three * 1_000_000
    digits = (stems[:, None] // (10 ** np.arange(8, -1, -1))) % 10
    check = 11 - (digits * np.array(_WEIGHTS)).sum(axis=1) % 11
    check = np.where(check == 11, 0, check)
    ok = check != 10
    return stems[ok] * 10 + check[ok]


def generate_test_numbers(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct valid NHS numbers, as 10-character strings, in random order.

    The official test range (999 000 0000 - 999 999 9999) holds only 909,091 valid numbers.
    Larger synthetic populations continue into 998..., 997... (never issued in England,
    whose live numbers start with 4, 6 or 7), so scale tests still use numbers no real
    person holds.
    """
    blocks: list[np.ndarray] = []
    have = 0
    first_three = 999
    while have < count:
        block = _valid_in_block(first_three)
        blocks.append(block)
        have += len(block)
        first_three -= 1
        if first_three < 990:
            raise ValueError("synthetic populations are limited to about 9 million people")
    pool = np.concatenate(blocks)
    chosen = rng.choice(len(pool), size=count, replace=False)
    return pool[chosen].astype("U10")
