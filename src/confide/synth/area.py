"""The area itself: its GP practices, hospital trusts and postcodes.

The area is Leeds: postcode districts LS1 to LS29, practices with ODS codes in the B86 range the
city's practices use, and the acute trusts its people are admitted to. Practice list sizes vary
the way real ones do (a few large, many middling).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from confide.common.errors import InvalidInput
from confide.synth import vocab

# The moment every export is taken: fixed so the same seed always gives the same files.
EXTRACT_DATE = date(2026, 11, 1)
EXTRACT_DAY = int(np.datetime64(EXTRACT_DATE, "D").astype(np.int64))

DISTRICTS = tuple(f"LS{n}" for n in range(1, 30))
# Districts outside the area, for hospital patients who are not registered here.
OUTSIDE_DISTRICTS = ("BD1", "BD3", "BD7", "WF1", "WF3", "HG1", "HG2", "YO1", "HX1", "HD1")
# Unit letters a postcode may use (never C, I, K, M, O, V).
UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))


@dataclass(frozen=True)
class Organisation:
    """A source of records: a GP practice or an acute hospital trust."""

    ods: str
    name: str
    kind: str  # "practice" or "trust"
    district: str = ""  # home postcode district (practices)


def default_practices(patients: int) -> int:
    """About one practice per 1,500 patients, at least one."""
    return max(1, round(patients / 1500))


def make_practices(rng: np.random.Generator, count: int) -> list[Organisation]:
    """``count`` practices with distinct ODS codes (a letter and five digits) and names."""
    if count < 1:
        raise InvalidInput("An area needs at least one practice (--practices 1 or more).")
    if count > 25_000:
        raise InvalidInput("An area can have at most 25,000 practices.")
    # B86 is Leeds; larger areas continue into neighbouring prefixes.
    serials = rng.permutation(999)[: min(count, 999)] + 1
    codes = [f"B86{s:03d}" for s in sorted(serials)]
    prefix = 87
    while len(codes) < count:
        take = min(count - len(codes), 999)
        codes += [f"B{prefix}{s:03d}" for s in range(1, take + 1)]
        prefix += 1
    places = rng.integers(0, len(vocab.PLACES), size=count)
    kinds = rng.integers(0, len(vocab.PRACTICE_KINDS), size=count)
    districts = rng.integers(0, len(DISTRICTS), size=count)
    return [
        Organisation(
            ods=code,
            name=f"{vocab.PLACES[p]} {vocab.PRACTICE_KINDS[k]}",
            kind="practice",
            district=DISTRICTS[d],
        )
        for code, p, k, d in zip(codes, places, kinds, districts, strict=True)
    ]


def make_trusts(count: int) -> list[Organisation]:
    """The first ``count`` trusts near the area; beyond the known ones, made-up R-codes."""
    if count < 0:
        raise InvalidInput("--trusts cannot be negative.")
    if count > 100:
        raise InvalidInput("An area can have at most 100 trusts.")
    out = [Organisation(ods, name, "trust") for ods, name in vocab.TRUSTS[:count]]
    for n in range(count - len(out)):
        letter = "ZYXWVUTS"[n // 10]
        out.append(Organisation(f"R{letter}{n % 10}", f"Synthetic Acute Trust {n + 1}", "trust"))
    return out


def list_sizes(rng: np.random.Generator, patients: int, practices: int) -> np.ndarray:
    """How many patients each practice holds: lognormal shares, every practice non-empty
    when there are enough patients."""
    shares = rng.lognormal(mean=0.0, sigma=0.45, size=practices)
    shares /= shares.sum()
    sizes = np.floor(shares * patients).astype(np.int64)
    if patients >= practices:
        sizes = np.maximum(sizes, 1)
    # Hand the rounding remainder (or excess) to the largest practices.
    diff = patients - int(sizes.sum())
    order = np.argsort(-sizes, kind="stable")
    i = 0
    while diff != 0:
        j = order[i % practices]
        if diff > 0:
            sizes[j] += 1
            diff -= 1
        elif sizes[j] > 1:
            sizes[j] -= 1
            diff += 1
        i += 1
    return sizes


def postcodes(rng: np.random.Generator, districts: np.ndarray) -> np.ndarray:
    """A postcode in each of ``districts`` (outward codes): sector digit and two unit letters."""
    n = len(districts)
    sector = rng.integers(0, 10, size=n).astype("U1")
    l1 = UNIT_LETTERS[rng.integers(0, len(UNIT_LETTERS), size=n)]
    l2 = UNIT_LETTERS[rng.integers(0, len(UNIT_LETTERS), size=n)]
    inward = np.char.add(np.char.add(sector, l1), l2)
    return np.char.add(np.char.add(districts.astype("U4"), " "), inward)


def nearby_districts(rng: np.random.Generator, home: np.ndarray) -> np.ndarray:
    """Mostly the practice's own district (an index into DISTRICTS), sometimes a neighbour."""
    shift = rng.choice(np.array([0, 0, 0, -1, 1, -2, 2]), size=len(home))
    moved = np.clip(home + shift, 0, len(DISTRICTS) - 1)
    return np.array(DISTRICTS)[moved]
