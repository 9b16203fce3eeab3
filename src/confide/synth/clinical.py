"""GP-recorded care: long-term conditions, short illnesses, measurements, prescriptions, type 1.

Each kind of record is drawn for all patients at once: who is eligible, how many records each
gets, then one vectorised expansion into rows. Rows end up as a few numpy columns (patient,
day, concept, value, note) sorted by patient then date, about 30 per patient on average.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from confide.common.codes import TYPE1_DISSENT, TYPE1_WITHDRAWN
from confide.synth import codelists as cl
from confide.synth.area import EXTRACT_DAY
from confide.synth.population import DAYS_PER_YEAR, Population

KINDS = ("condition", "observation", "procedure", "allergy", "immunisation")
_SNOMED_DISSENT = next(code for system, code in TYPE1_DISSENT if system == "snomed")
_SNOMED_WITHDRAWN = next(code for system, code in TYPE1_WITHDRAWN if system == "snomed")


def _day(iso: str) -> int:
    return int(np.datetime64(iso, "D").astype(np.int64))


OBS_WINDOW_START = _day("2019-11-01")  # routine measurements are kept from here
MED_WINDOW_START = _day("2023-05-01")  # prescription issues are kept from here
HISTORY_START = _day("1990-01-01")  # the earliest diagnosis a record carries
TYPE1_SHARE = 0.035  # share of patients with a type 1 objection recorded
TYPE1_WITHDRAWN_SHARE = 0.08  # share of objectors who later withdrew it
MED_INTERVAL = 56  # days between repeat issues


@dataclass(frozen=True)
class Concept:
    """A coded entry as it appears in an export row."""

    kind: str
    code: str
    term: str
    unit: str | None = None


def _concepts() -> tuple[Concept, ...]:
    out = [Concept("condition", c.code, c.term) for c in cl.CHRONIC]
    out += [Concept("condition", a.code, a.term) for a in cl.ACUTE]
    for m in (cl.BMI, cl.WEIGHT, cl.HEIGHT, cl.SYSTOLIC, cl.DIASTOLIC, cl.HBA1C, cl.CHOLESTEROL,
              cl.EGFR):  # fmt: skip
        out.append(Concept("observation", m.code, m.term, m.unit))
    out += [Concept("observation", code, term) for code, term, _ in cl.SMOKING]
    out.append(Concept("procedure", *cl.FLU_VACCINE))
    out.append(Concept("procedure", *cl.MED_REVIEW))
    out.append(Concept("procedure", *cl.SMEAR))
    out.append(
        Concept(
            "observation",
            _SNOMED_DISSENT,
            "Dissent from secondary use of GP patient identifiable data",
        )
    )
    out.append(
        Concept(
            "observation",
            _SNOMED_WITHDRAWN,
            "Dissent withdrawn for secondary use of GP patient identifiable data",
        )
    )
    # Last, so the indices of everything above (and the draws that use them) never move.
    out += [Concept("allergy", code, term) for code, term, _ in cl.ALLERGIES]
    out += [Concept("immunisation", code, term) for code, term, _ in cl.IMMUNISATIONS]
    return tuple(out)


CONCEPTS = _concepts()
_INDEX = {c.code: i for i, c in enumerate(CONCEPTS)}
DRUGS: tuple[cl.Drug, ...] = tuple(
    dict.fromkeys([d for c in cl.CHRONIC for d in c.drugs] + [a.drug for a in cl.ACUTE if a.drug])
)
_DRUG_INDEX = {d.code: i for i, d in enumerate(DRUGS)}
DISSENT = _INDEX[_SNOMED_DISSENT]
WITHDRAWN = _INDEX[_SNOMED_WITHDRAWN]


@dataclass
class _Rows:
    """Row columns collected piece by piece, concatenated once."""

    patient: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    item: list[np.ndarray] = field(default_factory=list)
    value: list[np.ndarray] = field(default_factory=list)
    note: list[np.ndarray] = field(default_factory=list)

    def add(self, rng, patient, day, item, value=None, note_share: float = 0.0) -> None:
        n = len(patient)
        if n == 0:
            return
        self.patient.append(np.asarray(patient, dtype=np.int32))
        self.day.append(np.asarray(day, dtype=np.int32))
        self.item.append(np.broadcast_to(np.asarray(item, dtype=np.int16), (n,)))
        self.value.append(
            np.full(n, np.nan) if value is None else np.asarray(value, dtype=np.float64)
        )
        if note_share > 0:
            noted = rng.random(n) < note_share
            self.note.append(np.where(noted, rng.integers(0, len(cl.NOTES), n), -1).astype(np.int8))
        else:
            self.note.append(np.full(n, -1, dtype=np.int8))

    def build(self) -> dict[str, np.ndarray]:
        """Columns sorted by patient, then date (stable, so equal keys keep their draw order)."""
        if not self.patient:
            empty = np.zeros(0, dtype=np.int32)
            return {"patient": empty, "day": empty, "item": empty.astype(np.int16),
                    "value": np.zeros(0), "note": empty.astype(np.int8)}  # fmt: skip
        cols = {
            "patient": np.concatenate(self.patient),
            "day": np.concatenate(self.day),
            "item": np.concatenate(self.item),
            "value": np.concatenate(self.value),
            "note": np.concatenate(self.note),
        }
        key = cols["patient"].astype(np.int64) << 20 | (cols["day"].astype(np.int64) + 40_000)
        order = np.argsort(key, kind="stable")
        return {name: col[order] for name, col in cols.items()}


@dataclass
class Clinical:
    """Events and prescriptions for the whole area, sorted by patient then date."""

    events: dict[str, np.ndarray]
    meds: dict[str, np.ndarray]
    conditions: np.ndarray  # bool [patients, len(CHRONIC)]: who has which long-term condition
    type1_dissent: int
    type1_withdrawn: int


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-owner ``counts``: the owner of each row and the row's position within its owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    pos = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, pos


def periodic(
    rng: np.random.Generator,
    who: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    interval: float,
    jitter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Roughly every ``interval`` days from a random phase after ``start`` up to ``end``."""
    first = start + (rng.random(len(who)) * interval).astype(np.int32)
    counts = np.where(end > first, (end - first) // int(interval) + 1, 0).astype(np.int64)
    owner, pos = _expand(counts)
    days = first[owner] + (pos * interval).astype(np.int32)
    days = days + rng.integers(-jitter, jitter + 1, size=len(days))
    days = np.clip(days, start[owner], end[owner] - 1)
    return who[owner], days.astype(np.int32)


def _uniform_days(rng, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.maximum(hi - lo, 0)
    return (lo + np.floor(rng.random(len(lo)) * (span + 1))).astype(np.int32)


def _chronic(rng, pop: Population, rows: _Rows, meds: _Rows) -> tuple[np.ndarray, np.ndarray]:
    """Who has each long-term condition, its diagnosis date and its repeat prescriptions."""
    n = len(pop)
    age_now = pop.age_at(pop.record_end)
    has = np.zeros((n, len(cl.CHRONIC)), dtype=bool)
    onset = np.full((n, len(cl.CHRONIC)), EXTRACT_DAY, dtype=np.int32)
    for c_i, c in enumerate(cl.CHRONIC):
        eligible = age_now >= c.min_age
        risk = np.exp(c.age_slope * (age_now - 50.0)) * np.where(pop.female, c.female_ratio, 1.0)
        risk = np.where(eligible, risk, 0.0)
        # ``prevalence`` is the share of adults with the condition (as QOF registers count).
        mean_risk = risk[age_now >= 18].mean() if (age_now >= 18).any() else 1.0
        chance = np.minimum(0.9, c.prevalence * risk / max(mean_risk, 1e-9))
        got = eligible & (rng.random(n) < chance)
        who = np.flatnonzero(got).astype(np.int32)
        lo = np.maximum(pop.dob[who] + int(c.min_age * DAYS_PER_YEAR), HISTORY_START)
        when = _uniform_days(rng, np.minimum(lo, pop.record_end[who] - 1), pop.record_end[who] - 1)
        has[who, c_i] = True
        onset[who, c_i] = when
        rows.add(rng, who, when, _INDEX[c.code], note_share=0.3)
        course = 540 if c.key in ("depression", "anxiety") else None
        for d_i, drug in enumerate(c.drugs):
            on = rng.random(len(who)) < (0.8, 0.45, 0.25)[min(d_i, 2)]
            p = who[on]
            start = np.maximum(when[on] + 7 * (d_i + 1), MED_WINDOW_START)
            end = pop.record_end[p].copy()
            if course is not None:
                end = np.minimum(end, when[on] + course)
            pp, days = periodic(rng, p, start, end, MED_INTERVAL, 5)
            meds.add(rng, pp, days, _DRUG_INDEX[drug.code])
    return has, onset


def _measures(rng, pop: Population, has: np.ndarray, onset: np.ndarray, rows: _Rows) -> None:
    """Routine and condition-driven measurements with plausible values."""
    n = len(pop)
    idx = {k: has[:, i] for k, i in cl.CHRONIC_INDEX.items()}
    diabetic = idx["t2dm"] | idx["t1dm"]
    cardio = idx["htn"] | idx["chd"] | idx["stroke"] | idx["af"] | idx["ckd"]
    everyone = np.arange(n, dtype=np.int32)
    adult_from = pop.dob + int(18 * DAYS_PER_YEAR)
    start = np.maximum(np.maximum(adult_from, pop.record_start), OBS_WINDOW_START)
    end = pop.record_end

    # Per-person baselines so repeated measurements of one person hang together.
    height = np.where(pop.female, rng.normal(163, 6.5, n), rng.normal(176, 7, n))
    bmi0 = np.clip(rng.normal(27.5, 5.0, n) + 2.5 * diabetic, 16, 55)
    sys0 = rng.normal(126, 13, n) + 12 * idx["htn"] + 0.25 * (pop.age_at(EXTRACT_DAY) - 50)
    dia0 = rng.normal(78, 8, n) + 6 * idx["htn"]
    a1c0 = np.where(diabetic, np.clip(rng.normal(60, 13, n), 42, 130), rng.normal(37, 3.5, n))
    chol0 = np.clip(rng.normal(5.2, 1.0, n) - 0.8 * (cardio | diabetic), 2.5, 9.5)
    egfr0 = np.where(idx["ckd"], rng.normal(48, 9, n), np.clip(rng.normal(88, 13, n), 60, 130))

    def routine(mask: np.ndarray, interval: float, extra: np.ndarray | None = None):
        who = everyone[mask]
        s = start[who]
        if extra is not None:  # closer monitoring from the diagnosis onwards
            s = np.where(extra[who] < EXTRACT_DAY, np.maximum(s, extra[who]), s)
        return periodic(rng, who, s, end[who], interval, 20)

    cond_onset = np.where(diabetic | cardio, onset.min(axis=1), EXTRACT_DAY)

    # Blood pressure: every 3 years for adults, twice a year when it is being managed.
    for mask, interval in (((~cardio) & (~diabetic), 3 * 365.25), (cardio | diabetic, 273.9)):
        p, days = routine(mask, interval, cond_onset if interval < 365 else None)
        s = sys0[p] + rng.normal(0, 8, len(p))
        rows.add(rng, p, days, _INDEX[cl.SYSTOLIC.code], np.round(s), note_share=0.03)
        rows.add(
            rng, p, days, _INDEX[cl.DIASTOLIC.code], np.round(dia0[p] + rng.normal(0, 5, len(p)))
        )

    # Height once; weight and BMI every 3 years (yearly for people with diabetes).
    adults = end > start
    p = everyone[adults]
    rows.add(rng, p, start[p], _INDEX[cl.HEIGHT.code], np.round(height[p]))
    for mask, interval in ((~diabetic, 3 * 365.25), (diabetic, 365.25)):
        p, days = routine(mask & adults, interval)
        b = np.round(bmi0[p] + rng.normal(0, 0.8, len(p)), 1)
        rows.add(rng, p, days, _INDEX[cl.BMI.code], b)
        rows.add(rng, p, days, _INDEX[cl.WEIGHT.code], np.round(b * (height[p] / 100) ** 2, 1))

    over40 = pop.age_at(end) >= 40
    # HbA1c: twice a year with diabetes, every 3 years as a check from 40.
    for mask, interval in ((diabetic, 182.6), (over40 & ~diabetic, 3 * 365.25)):
        p, days = routine(mask, interval, cond_onset if interval < 365 else None)
        v = np.round(np.maximum(a1c0[p] + rng.normal(0, 5, len(p)), 25))
        rows.add(rng, p, days, _INDEX[cl.HBA1C.code], v)
    # Cholesterol and kidney function.
    for mask, interval in (
        (over40 & ~(cardio | diabetic), 5 * 365.25),
        (cardio | diabetic, 365.25),
    ):
        p, days = routine(mask, interval)
        c = np.round(np.clip(chol0[p] + rng.normal(0, 0.4, len(p)), 2.0, 12.0), 1)
        rows.add(rng, p, days, _INDEX[cl.CHOLESTEROL.code], c)
    p, days = routine(idx["ckd"] | diabetic | idx["htn"], 365.25)
    rows.add(
        rng,
        p,
        days,
        _INDEX[cl.EGFR.code],
        np.round(np.clip(egfr0[p] + rng.normal(0, 5, len(p)), 5, 150)),
    )

    # Smoking status once as an adult, sometimes again later.
    p = everyone[adults]
    status = rng.choice(len(cl.SMOKING), size=len(p), p=[s[2] for s in cl.SMOKING])
    status_items = np.array([_INDEX[s[0]] for s in cl.SMOKING], dtype=np.int16)
    rows.add(rng, p, start[p], status_items[status])
    again = rng.random(len(p)) < 0.35
    q = p[again]
    rows.add(rng, q, _uniform_days(rng, start[q], end[q] - 1), status_items[status[again]])


def _procedures(rng, pop: Population, has: np.ndarray, rows: _Rows, on_repeats: np.ndarray):
    """Flu vaccinations each autumn, yearly medication reviews, cervical screening."""
    n = len(pop)
    everyone = np.arange(n, dtype=np.int32)
    at_risk = has[:, [cl.CHRONIC_INDEX[k] for k in ("t2dm", "t1dm", "copd", "asthma", "chd")]]
    for year in range(2019, 2026):
        autumn = _day(f"{year}-10-01")
        eligible = (pop.age_at(autumn) >= 65) | at_risk.any(axis=1)
        eligible &= (pop.record_start <= autumn) & (pop.record_end > autumn + 90)
        p = everyone[eligible & (rng.random(n) < 0.72)]
        rows.add(rng, p, autumn + rng.integers(0, 80, len(p)), _INDEX[cl.FLU_VACCINE[0]])
    p = everyone[on_repeats]
    s = np.maximum(pop.record_start[p], MED_WINDOW_START)
    pp, days = periodic(rng, p, s, pop.record_end[p], 365.25, 30)
    rows.add(rng, pp, days, _INDEX[cl.MED_REVIEW[0]], note_share=0.2)
    age = pop.age_at(pop.record_end)
    women = pop.female & (age >= 25) & (age <= 64) & (rng.random(n) < 0.7)
    p = everyone[women]
    s = np.maximum(
        np.maximum(pop.record_start[p], pop.dob[p] + int(25 * DAYS_PER_YEAR)), OBS_WINDOW_START
    )
    pp, days = periodic(rng, p, s, pop.record_end[p], 3 * 365.25, 40)
    rows.add(rng, pp, days, _INDEX[cl.SMEAR[0]])


def _acute(rng, pop: Population, rows: _Rows, meds: _Rows) -> None:
    """Short illnesses at their yearly rates, some treated the same day."""
    n = len(pop)
    start = np.maximum(pop.record_start, OBS_WINDOW_START)
    years = np.maximum(pop.record_end - start, 0) / DAYS_PER_YEAR
    for a in cl.ACUTE:
        rate = a.rate * np.where(pop.female, 1.5 if a.code == "68566005" else 1.0, 1.0)
        counts = rng.poisson(rate * years)
        owner, _ = _expand(counts)
        p = owner.astype(np.int32)
        days = _uniform_days(rng, start[p], pop.record_end[p] - 1)
        rows.add(rng, p, days, _INDEX[a.code], note_share=0.35)
        if a.drug is not None:
            treated = rng.random(len(p)) < a.treated
            meds.add(rng, p[treated], days[treated], _DRUG_INDEX[a.drug.code])
    del n


def _type1(rng, pop: Population, rows: _Rows) -> tuple[int, int]:
    """Type 1 objections, bunched around care.data (2014) and GPDPR (2021), a few withdrawn."""
    n = len(pop)
    everyone = np.arange(n, dtype=np.int32)
    who = everyone[rng.random(n) < TYPE1_SHARE]
    era = rng.choice(3, size=len(who), p=[0.35, 0.35, 0.30])
    lo = np.array([_day("2013-10-01"), _day("2021-05-20"), _day("2015-01-01")])[era]
    hi = np.array([_day("2014-12-31"), _day("2021-09-30"), EXTRACT_DAY - 2])[era]
    lo = np.maximum(lo, pop.record_start[who])
    hi = np.minimum(hi, pop.record_end[who] - 2)
    when = _uniform_days(rng, np.minimum(lo, hi), hi)
    when = np.maximum(when, pop.dob[who])
    rows.add(rng, who, when, DISSENT)
    # Withdrawals come any time between a month after the objection and the record's end.
    back = rng.random(len(who)) < TYPE1_WITHDRAWN_SHARE
    first, limit = when[back] + 30, pop.record_end[who[back]] - 1
    ok = limit > first
    later = first + np.floor(rng.random(len(first)) * np.maximum(limit - first, 0)).astype(np.int32)
    rows.add(rng, who[back][ok], later[ok], WITHDRAWN)
    return len(who), int(ok.sum())


def _allergies_and_immunisations(rng, pop: Population, rows: _Rows) -> None:
    """Each allergy and immunisation at most once per person, on a day in their record.
    Drawn after everything else, so earlier draws (and the records they make) are unchanged."""
    n = len(pop)
    everyone = np.arange(n, dtype=np.int32)
    for code, _term, share in (*cl.ALLERGIES, *cl.IMMUNISATIONS):
        p = everyone[(rng.random(n) < share) & (pop.record_end > pop.record_start + 1)]
        days = _uniform_days(rng, pop.record_start[p], pop.record_end[p] - 1)
        rows.add(rng, p, days, _INDEX[code])


def make_clinical(rng: np.random.Generator, pop: Population) -> Clinical:
    """Every GP-recorded event and prescription for the population."""
    rows, meds = _Rows(), _Rows()
    has, onset = _chronic(rng, pop, rows, meds)
    _measures(rng, pop, has, onset, rows)
    _acute(rng, pop, rows, meds)
    med_cols = meds.build()
    on_repeats = np.zeros(len(pop), dtype=bool)
    on_repeats[med_cols["patient"]] = True
    _procedures(rng, pop, has, rows, on_repeats)
    dissent, withdrawn = _type1(rng, pop, rows)
    _allergies_and_immunisations(rng, pop, rows)
    return Clinical(rows.build(), med_cols, has, dissent, withdrawn)
