"""Hospital admitted-patient episodes and the trusts' own (imperfect) patient details.

Hospital patients are mostly people registered in the area, plus a few from outside it. A
trust's copy of a person's identifiers carries the errors real ones do, at configurable rates:
missing or mistyped NHS numbers, a postcode from before the last move, day and month of birth
swapped. These are what probabilistic linkage at the pseudonymiser has to cope with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from confide.synth import codelists as cl
from confide.synth.area import EXTRACT_DAY, OUTSIDE_DISTRICTS, postcodes
from confide.synth.population import DAYS_PER_YEAR, NO_DATE, Population

WINDOW_START = int(np.datetime64("2021-04-01", "D").astype(np.int64))
OUTSIDE_SHARE = 0.03  # hospital patients who are not registered in the area
MAIN_TRUST_SHARE = 0.85  # admissions to the practice's usual trust


@dataclass(frozen=True)
class IdentifierErrors:
    """How often a trust's copy of a person's identifiers is wrong."""

    missing_nhs: float = 0.02
    mistyped_nhs: float = 0.01  # one digit wrong
    transposed_nhs: float = 0.002  # two neighbouring (different) digits swapped
    old_postcode: float = 0.05
    swapped_dob: float = 0.015  # among those whose day of birth is 12 or less
    mistyped_dob: float = 0.005  # one digit of the day wrong (among those not swapped)


@dataclass
class People:
    """Demographics of everyone hospitals mention (area patients first, then outsiders)."""

    fields: dict[str, np.ndarray]
    registered: int  # people [0, registered) are the area's patients

    def __len__(self) -> int:
        return len(self.fields["nhs"])


DEMOGRAPHICS = ("nhs", "female", "dob", "death", "given", "family", "title", "house", "street",
                "suffix", "postcode", "old_postcode", "phone_kind", "phone_num")  # fmt: skip


def combine(pop: Population, outsiders: Population | None) -> People:
    """Area patients and outsiders in one set of demographic arrays."""
    if outsiders is None:
        return People({name: getattr(pop, name) for name in DEMOGRAPHICS}, len(pop))
    fields = {
        name: np.concatenate([getattr(pop, name), getattr(outsiders, name)])
        for name in DEMOGRAPHICS
    }
    return People(fields, len(pop))


def outsider_postcodes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Postcodes outside the area for people registered elsewhere."""
    return postcodes(rng, np.array(OUTSIDE_DISTRICTS)[rng.integers(0, len(OUTSIDE_DISTRICTS), n)])


@dataclass
class TrustData:
    """One trust's export: its patients (recorded identifiers) and their episodes."""

    person: np.ndarray  # index into People, one row per trust patient
    nhs: np.ndarray  # U10, "" when missing
    dob: np.ndarray  # int32 days (possibly day/month swapped)
    postcode: np.ndarray  # U8 (possibly an old one)
    episodes: dict[str, np.ndarray]  # row, admission, discharge, method, diagnoses, procedures


def outsiders_for(patients: int) -> int:
    """How many outsiders to add so they are about OUTSIDE_SHARE of hospital patients
    (roughly 45% of the area's patients are admitted within the window)."""
    return max(1, round(patients * 0.45 * OUTSIDE_SHARE))


def _rate(age: np.ndarray) -> np.ndarray:
    """Admissions per person-year by age (a U-shape: babies, then rising after 40)."""
    return 0.05 + 0.05 * (age < 2) + 0.005 * np.maximum(age - 40, 0)


def make_episodes(
    rng: np.random.Generator,
    people: People,
    conditions: np.ndarray,
    practice: np.ndarray,
    n_trusts: int,
    errors: IdentifierErrors,
) -> list[TrustData]:
    """Admissions for everyone, split by trust, with each trust's identifier errors."""
    if n_trusts == 0:
        return []
    f = people.fields
    n = len(people)
    end = np.where(f["death"] == NO_DATE, EXTRACT_DAY, f["death"])
    start = np.maximum(WINDOW_START, f["dob"])
    years = np.maximum(end - start, 0) / DAYS_PER_YEAR
    age = ((end - f["dob"]) / DAYS_PER_YEAR).astype(np.int32)
    counts = rng.poisson(_rate(age) * years)
    outsider = np.arange(n) >= people.registered
    counts = np.where(outsider, np.maximum(counts, 1), counts)
    person = np.repeat(np.arange(n, dtype=np.int32), counts)
    m = len(person)

    # Trust: mostly the one serving the person's practice; outsiders anywhere.
    main = np.concatenate([practice % n_trusts, rng.integers(0, n_trusts, n - len(practice))])
    trust = np.where(rng.random(m) < MAIN_TRUST_SHARE, main[person], rng.integers(0, n_trusts, m))

    elective = rng.random(m) < 0.4
    reasons = np.array([r[3] for r in cl.HOSPITAL_REASONS])
    el_idx, em_idx = np.flatnonzero(reasons), np.flatnonzero(~reasons)
    reason = np.where(
        elective, el_idx[rng.integers(0, len(el_idx), m)], em_idx[rng.integers(0, len(em_idx), m)]
    )
    span = np.maximum(end[person] - start[person] - 1, 0)
    admission = (start[person] + np.floor(rng.random(m) * span)).astype(np.int32)
    stay = np.where(elective, rng.geometric(0.5, m) - 1, rng.geometric(0.2, m))
    discharge = admission + stay
    discharge = np.where(discharge >= EXTRACT_DAY, NO_DATE, discharge).astype(np.int32)
    method = _methods(rng, elective)

    # Secondary diagnoses: the person's long-term conditions (outsiders get a random few).
    cond = np.zeros((n, conditions.shape[1]), dtype=bool)
    cond[: people.registered] = conditions
    cond[people.registered :] = rng.random((n - people.registered, conditions.shape[1])) < 0.05
    bits = (cond.astype(np.int64) << np.arange(conditions.shape[1])).sum(axis=1)
    diagnoses = _diagnosis_text(reason, bits[person])
    procedures = _procedure_text(rng, reason)

    order = np.lexsort((admission, person, trust))
    out = []
    for t in range(n_trusts):
        sel = order[trust[order] == t]
        who, row = np.unique(person[sel], return_inverse=True)
        recorded = _recorded_identifiers(rng, people, who, errors)
        out.append(
            TrustData(
                person=who.astype(np.int32),
                **recorded,
                episodes={
                    "row": row.astype(np.int32),
                    "admission": admission[sel],
                    "discharge": discharge[sel],
                    "method": method[sel],
                    "diagnoses": diagnoses[sel],
                    "procedures": procedures[sel],
                },
            )
        )
    return out


def _methods(rng: np.random.Generator, elective: np.ndarray) -> np.ndarray:
    out = np.empty(len(elective), dtype="U2")
    for kind, mask in (("elective", elective), ("emergency", ~elective)):
        codes, weights = zip(*cl.ADMISSION_METHODS[kind], strict=True)
        out[mask] = np.array(codes)[rng.choice(len(codes), size=int(mask.sum()), p=weights)]
    return out


def _diagnosis_text(reason: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """'primary;secondary;…' strings, built once per distinct (reason, conditions) pair."""
    key = reason.astype(np.int64) << 20 | bits
    uniq, inverse = np.unique(key, return_inverse=True)
    texts = []
    for k in uniq.tolist():
        primary = cl.HOSPITAL_REASONS[k >> 20][0]
        secondary = [c.icd10 for i, c in enumerate(cl.CHRONIC) if (k >> i) & 1]
        texts.append(";".join(dict.fromkeys([primary, *secondary])))
    return np.array(texts, dtype=object)[inverse]


def _procedure_text(rng: np.random.Generator, reason: np.ndarray) -> np.ndarray:
    """The reason's usual procedures, each done most of the time ('' when none)."""
    done = rng.random((len(reason), 2)) < np.array([0.85, 0.5])
    key = reason.astype(np.int64) << 2 | done[:, 0] | (done[:, 1].astype(np.int64) << 1)
    uniq, inverse = np.unique(key, return_inverse=True)
    texts = []
    for k in uniq.tolist():
        usual = cl.HOSPITAL_REASONS[k >> 2][2]
        texts.append(";".join(p for i, p in enumerate(usual) if (k >> i) & 1))
    return np.array(texts, dtype=object)[inverse]


def hospital_records(
    rng: np.random.Generator, people: People, count: int, errors: IdentifierErrors
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``count`` hospital records of people drawn at random (outsiders at their share), as a
    trust would record their identifiers: for linkage benchmarks at any size. Returns each
    record's person (index into ``people``) and its ``nhs``, ``dob``, ``postcode``."""
    who = rng.integers(0, len(people), count).astype(np.int64)
    return who, _recorded_identifiers(rng, people, who, errors)


def _transpose(rng: np.random.Generator, digits: np.ndarray, rows: np.ndarray) -> None:
    """Swap two neighbouring, different digits (after the test-range prefix) in ``rows``."""
    for r in np.flatnonzero(rows):
        places = [i for i in range(3, 8) if digits[r, i] != digits[r, i + 1]]
        if places:
            i = places[int(rng.integers(0, len(places)))]
            digits[r, i], digits[r, i + 1] = digits[r, i + 1], digits[r, i]


def _recorded_identifiers(
    rng: np.random.Generator, people: People, who: np.ndarray, errors: IdentifierErrors
) -> dict[str, np.ndarray]:
    """A trust's copy of the identifiers of ``who``, with its errors."""
    f = people.fields
    k = len(who)
    nhs = f["nhs"][who].astype("U10")
    digits = nhs.astype("S10").view(np.uint8).reshape(-1, 10).copy()
    mistyped = rng.random(k) < errors.mistyped_nhs
    pos = rng.integers(3, 9, k)  # keep the test-range prefix
    rows = np.flatnonzero(mistyped)
    old = digits[rows, pos[rows]] - ord("0")
    digits[rows, pos[rows]] = (old + rng.integers(1, 10, len(rows))) % 10 + ord("0")
    _transpose(rng, digits, ~mistyped & (rng.random(k) < errors.transposed_nhs))
    nhs = digits.view("S10").reshape(-1).astype("U10")
    nhs = np.where(rng.random(k) < errors.missing_nhs, "", nhs)

    dob = f["dob"][who].copy()
    as_date = dob.astype("datetime64[D]")
    month_start = as_date.astype("datetime64[M]")
    day = (as_date - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    month = month_start.astype(np.int64) % 12 + 1
    can_swap = (day <= 12) & (day != month)
    swap = can_swap & (rng.random(k) < errors.swapped_dob)
    year_start = as_date.astype("datetime64[Y]").astype("datetime64[M]")
    swapped = (year_start + (day - 1)).astype("datetime64[D]") + (month - 1)
    dob = np.where(swap, swapped.astype(np.int64), dob).astype(np.int32)
    # A typo in the day: one digit of it changes, and the date stays a real one.
    typo = ~swap & (rng.random(k) < errors.mistyped_dob)
    up = (day % 10 <= 7) & (day + 1 <= 28)
    shifted = np.where(up, day + 1, np.where(day % 10 >= 1, day - 1, day - 10))
    dob = np.where(typo, dob + (shifted - day), dob).astype(np.int32)

    moved = rng.random(k) < errors.old_postcode
    postcode = np.where(moved, f["old_postcode"][who], f["postcode"][who])
    return {"nhs": nhs, "dob": dob, "postcode": postcode}
