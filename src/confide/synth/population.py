"""The people of the area: age, sex, identifiers, addresses, registrations and deaths.

Everything is a numpy array over patients (no Python object per person), so a million people
take seconds. Patients are ordered by their current (or last) practice, which lets each
practice's export be a contiguous slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from confide.common.nhs_number import generate_test_numbers
from confide.synth import area, vocab

NO_DATE = np.iinfo(np.int32).min  # "no date" in int32 day arrays (epoch days can be negative)
DAYS_PER_YEAR = 365.25

# England mid-2021 population by five-year band (ONS, per cent; 90+ last).
AGE_BANDS = np.array(
    [5.4, 5.9, 6.0, 5.6, 5.9, 6.6, 6.9, 6.7, 6.3, 6.3, 6.9, 6.7, 5.8, 5.0, 5.0, 3.6, 2.5, 1.5, 0.9]
)
# Share of women by the same bands: about even until later life, when women outlive men.
FEMALE_SHARE = np.array(
    [0.49, 0.49, 0.49, 0.49, 0.49, 0.50, 0.50, 0.51, 0.51, 0.51, 0.51, 0.51, 0.51, 0.52, 0.53,
     0.55, 0.58, 0.62, 0.68]
)  # fmt: skip
DEATH_WINDOW_YEARS = 6  # deaths are recorded in the exports for this many years back
MOVES = (0.82, 0.14, 0.04)  # share of people with 0, 1 or 2 earlier practices in the area
LEFT_AREA = 0.02  # share of the living whose registration ended when they moved away


@dataclass
class Population:
    """Per-patient arrays (index = patient) and the registration rows."""

    nhs: np.ndarray  # U10
    female: np.ndarray  # bool
    dob: np.ndarray  # int32 epoch days
    death: np.ndarray  # int32 epoch days or NO_DATE
    practice: np.ndarray  # int32: current or last practice (sorted ascending)
    record_start: np.ndarray  # int32: first registration in the area
    record_end: np.ndarray  # int32: death, leaving, or the extract date
    given: np.ndarray  # index into the sex's given-name list
    family: np.ndarray  # index into vocab.FAMILY
    title: np.ndarray  # index into TITLES, -1 for none (children)
    house: np.ndarray  # house number
    street: np.ndarray  # index into vocab.STREETS
    suffix: np.ndarray  # index into vocab.STREET_SUFFIXES
    postcode: np.ndarray  # U8, current address
    old_postcode: np.ndarray  # U8, the address before the last move
    phone_kind: np.ndarray  # 0 none, 1 mobile, 2 landline
    phone_num: np.ndarray  # 0..999 within the Ofcom drama ranges
    reg_patient: np.ndarray  # registrations: patient index
    reg_practice: np.ndarray  # registrations: practice index
    reg_start: np.ndarray
    reg_end: np.ndarray  # NO_DATE while current

    def __len__(self) -> int:
        return len(self.nhs)

    def age_at(self, day: int | np.ndarray) -> np.ndarray:
        """Whole years of age at ``day`` (approximate; enough for rates and eligibility)."""
        return ((np.asarray(day) - self.dob) / DAYS_PER_YEAR).astype(np.int32)


TITLES = tuple(t for t, _ in vocab.TITLES_FEMALE) + tuple(t for t, _ in vocab.TITLES_MALE)


def _ages(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Age in days at the extract date and sex, following the England pyramid."""
    bands = rng.choice(len(AGE_BANDS), size=n, p=AGE_BANDS / AGE_BANDS.sum())
    width = np.where(bands == len(AGE_BANDS) - 1, 12.0, 5.0)
    within = rng.random(n)
    # The 90+ band thins out with age: skew towards its start.
    within = np.where(bands == len(AGE_BANDS) - 1, within**2, within)
    years = bands * 5 + within * width
    female = rng.random(n) < FEMALE_SHARE[bands]
    return (years * DAYS_PER_YEAR).astype(np.int32), female


def _death_days(rng: np.random.Generator, age_days: np.ndarray) -> np.ndarray:
    """Date of death for those who died within the window (Gompertz mortality), else NO_DATE."""
    age = age_days / DAYS_PER_YEAR
    yearly = np.minimum(0.5, 2.25e-5 * np.exp(0.0978 * age) + 0.0002)
    died = rng.random(len(age)) < 1 - (1 - yearly) ** DEATH_WINDOW_YEARS
    back = rng.integers(1, int(DEATH_WINDOW_YEARS * DAYS_PER_YEAR), size=len(age))
    back = np.minimum(back, np.maximum(age_days - 1, 1))  # nobody dies before birth
    return np.where(died, area.EXTRACT_DAY - back, NO_DATE).astype(np.int32)


def _uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.maximum(hi - lo, 0)
    return (lo + np.floor(rng.random(len(lo)) * (span + 1))).astype(np.int32)


def make_population(
    rng: np.random.Generator,
    patients: int,
    practices: list[area.Organisation],
    nhs_numbers: np.ndarray,
) -> Population:
    """Build ``patients`` people registered across ``practices``."""
    n = patients
    k = len(practices)
    sizes = area.list_sizes(rng, n, k)
    home = np.repeat(np.arange(k, dtype=np.int32), sizes)

    age_days, female = _ages(rng, n)
    dob = (area.EXTRACT_DAY - age_days).astype(np.int32)
    death = _death_days(rng, age_days)
    alive_end = np.where(death == NO_DATE, area.EXTRACT_DAY, death).astype(np.int32)

    # First registration in the area: at birth for most of those born here, else on arrival.
    y1990 = int(np.datetime64("1990-01-01", "D").astype(np.int64))
    born_here = (dob > y1990) & (rng.random(n) < 0.7)
    adult_from = np.maximum(dob + int(16 * DAYS_PER_YEAR), y1990)
    arrive_lo = np.where(born_here, dob, np.minimum(adult_from, alive_end - 1))
    arrive_hi = np.where(born_here, dob + 42, alive_end - 1)
    skew = rng.beta(1.0, 1.8, size=n)
    first = (arrive_lo + skew * np.maximum(arrive_hi - arrive_lo, 0)).astype(np.int32)
    first = np.minimum(np.maximum(first, dob), alive_end)

    # Leaving the area ends the last registration (the record stays with that practice).
    left = (death == NO_DATE) & (rng.random(n) < LEFT_AREA)
    left_day = _uniform_between(rng, first + 1, np.full(n, area.EXTRACT_DAY - 1))
    record_end = np.where(left, left_day, alive_end).astype(np.int32)

    moves = rng.choice(3, size=n, p=np.array(MOVES)) if k > 1 else np.zeros(n, dtype=np.int64)
    moves = np.where(record_end - first > 60, moves, 0)
    reg = _registrations(rng, home, first, record_end, moves, death, left, k)

    districts = area.nearby_districts(
        rng, np.array([area.DISTRICTS.index(p.district) for p in practices])[home]
    )
    postcode = area.postcodes(rng, districts)
    old_postcode = area.postcodes(
        rng, np.array(area.DISTRICTS)[rng.integers(0, len(area.DISTRICTS), size=n)]
    )

    given_f = rng.integers(0, len(vocab.GIVEN_FEMALE), size=n)
    given_m = rng.integers(0, len(vocab.GIVEN_MALE), size=n)
    ranks = np.arange(len(vocab.FAMILY))
    family_p = 1.0 / (ranks + 8.0)
    family = rng.choice(len(vocab.FAMILY), size=n, p=family_p / family_p.sum())
    tf = rng.choice(len(vocab.TITLES_FEMALE), size=n, p=[p for _, p in vocab.TITLES_FEMALE])
    tm = rng.choice(len(vocab.TITLES_MALE), size=n, p=[p for _, p in vocab.TITLES_MALE])
    title = np.where(female, tf, len(vocab.TITLES_FEMALE) + tm)
    title = np.where(age_days < 16 * DAYS_PER_YEAR, -1, title)

    return Population(
        nhs=nhs_numbers,
        female=female,
        dob=dob,
        death=death,
        practice=home,
        record_start=first,
        record_end=record_end,
        given=np.where(female, given_f, given_m).astype(np.int16),
        family=family.astype(np.int16),
        title=title.astype(np.int8),
        house=rng.integers(1, 240, size=n).astype(np.int16),
        street=rng.integers(0, len(vocab.STREETS), size=n).astype(np.int16),
        suffix=rng.integers(0, len(vocab.STREET_SUFFIXES), size=n).astype(np.int16),
        postcode=postcode,
        old_postcode=old_postcode,
        phone_kind=rng.choice(3, size=n, p=[0.1, 0.6, 0.3]).astype(np.int8),
        phone_num=rng.integers(0, 1000, size=n).astype(np.int16),
        **reg,
    )


def _registrations(
    rng: np.random.Generator,
    home: np.ndarray,
    first: np.ndarray,
    record_end: np.ndarray,
    moves: np.ndarray,
    death: np.ndarray,
    left: np.ndarray,
    k: int,
) -> dict[str, np.ndarray]:
    """Registration rows: earlier practices (ended) then the current one, ordered by patient."""
    n = len(home)
    counts = moves + 1
    patient = np.repeat(np.arange(n, dtype=np.int32), counts)
    pos = np.arange(len(patient)) - np.repeat(np.cumsum(counts) - counts, counts)
    # Move dates: sorted uniforms strictly between the first registration and the record end.
    u = np.sort(rng.random((n, 2)), axis=1)
    span = np.maximum(record_end - first - 30, 1)
    move1 = first + 15 + (u[:, 0] * span).astype(np.int32)
    move2 = first + 15 + (u[:, 1] * span).astype(np.int32)
    move2 = np.maximum(move2, move1 + 1)
    # Start of each registration.
    start_by_pos = np.stack([first, move1, move2], axis=1)
    # Start of registration number ``pos`` within a patient with ``moves`` moves.
    starts = start_by_pos[patient, pos]
    last = pos == moves[patient]
    next_start = start_by_pos[patient, np.minimum(pos + 1, 2)]
    gap = rng.integers(0, 15, size=len(patient))
    ended_by_move = np.maximum(next_start - gap, starts)
    closed = (death[patient] != NO_DATE) | left[patient]
    ends = np.where(last, np.where(closed, record_end[patient], NO_DATE), ended_by_move)
    # The practice before the current one differs from it; the one before that differs from
    # its successor (and may be the current one again: people move back).
    before_last = (home + rng.integers(1, max(k, 2), size=n)) % max(k, 1)
    first_of_two = (before_last + rng.integers(1, max(k, 2), size=n)) % max(k, 1)
    earlier = np.where(pos == moves[patient] - 1, before_last[patient], first_of_two[patient])
    practice = np.where(last, home[patient], earlier).astype(np.int32)
    return {
        "reg_patient": patient,
        "reg_practice": practice,
        "reg_start": starts.astype(np.int32),
        "reg_end": ends.astype(np.int32),
    }


def numbers_for(rng: np.random.Generator, count: int) -> np.ndarray:
    """Distinct test-range NHS numbers for everyone the area will mention."""
    return generate_test_numbers(count, rng)
