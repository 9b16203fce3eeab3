"""Opening identities into what the hub may hold: coarse, validated demographics.

Vectorised over Arrow arrays: a million identity rows take about a second. Full postcode and
exact date of birth never leave the pseudonymiser: the hub gets the postcode district and the
year and month of birth.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from confide.common import nhs_number, postcode

SEXES = ("male", "female", "other", "unknown")


def normalised_numbers(raw: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(normalised NHS numbers, validity mask)."""
    cleaned = pc.replace_substring_regex(pc.utf8_trim_whitespace(raw), r"[\s-]", "")
    shaped = pc.fill_null(pc.match_substring_regex(cleaned, r"^[0-9]{10}$"), False)
    shaped_np = shaped.to_numpy(zero_copy_only=False)
    valid = np.zeros(len(raw), dtype=bool)
    if shaped_np.any():
        candidates = pc.filter(cleaned, shaped).to_numpy(zero_copy_only=False).astype("S10")
        valid[shaped_np] = nhs_number.valid_mask(candidates)
    return cleaned, valid


def reasons(raw: pa.Array, valid: np.ndarray) -> list[str | None]:
    """Why each invalid number is invalid (None for valid ones); never echoes the number."""
    values = raw.to_pylist()
    return [None if ok else nhs_number.why_invalid(v) for v, ok in zip(values, valid, strict=True)]


def birth_year_month(raw: pa.Array) -> tuple[pa.Array, pa.Array]:
    parsed = pc.strptime(raw, format="%Y-%m-%d", unit="s", error_is_null=True)
    return pc.cast(pc.year(parsed), pa.int16()), pc.cast(pc.month(parsed), pa.int8())


def districts(raw: pa.Array) -> pa.Array:
    """Postcode district for each postcode (None when it is not a valid postcode)."""
    unique = pc.unique(raw)
    mapped = pa.array([postcode.district(v) for v in unique.to_pylist()], pa.string())
    return pc.take(mapped, pc.index_in(raw, value_set=unique))


def sexes(raw: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
    known = pc.fill_null(pc.is_in(lowered, value_set=pa.array(SEXES)), False)
    return pc.if_else(known, lowered, pa.scalar("unknown"))
