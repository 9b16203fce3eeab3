"""One source's export as Arrow tables with exactly the CSV columns of docs/formats.md.

Both writers start here: the CSV writer writes these tables as they are, the FHIR writers turn
their rows into resources, so every format carries the same content. Strings are built with
Arrow compute kernels (take, join, pad) rather than a Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from confide.synth import vocab
from confide.synth.area import Organisation
from confide.synth.clinical import CONCEPTS, DRUGS, KINDS, Clinical
from confide.synth.codelists import NOTES
from confide.synth.hospital import People, TrustData
from confide.synth.population import NO_DATE, TITLES, Population

COLUMNS = {
    "patients": ("patient_id", "nhs_number", "title", "given_name", "family_name", "birth_date",
                 "sex", "address_line", "postcode", "phone", "date_of_death"),
    "registrations": ("patient_id", "practice_ods", "start_date", "end_date"),
    "events": ("patient_id", "date", "kind", "system", "code", "term", "value", "unit", "note"),
    "medications": ("patient_id", "date", "system", "code", "term", "dosage_text", "quantity",
                    "quantity_unit"),
    "episodes": ("patient_id", "episode_id", "admission_date", "discharge_date",
                 "admission_method", "diagnoses", "procedures"),
}  # fmt: skip

_GIVEN = pa.array(vocab.GIVEN_FEMALE + vocab.GIVEN_MALE)
_FAMILY = pa.array(vocab.FAMILY)
_TITLES = pa.array(TITLES)
_STREETS = pa.array(vocab.STREETS)
_SUFFIXES = pa.array(vocab.STREET_SUFFIXES)
_SEX = pa.array(["male", "female"])
_KIND = pa.array(KINDS)
_CONCEPT_KIND = np.array([KINDS.index(c.kind) for c in CONCEPTS], dtype=np.int8)
_CONCEPT_CODE = pa.array([c.code for c in CONCEPTS])
_CONCEPT_TERM = pa.array([c.term for c in CONCEPTS])
_CONCEPT_UNIT = pa.array([c.unit for c in CONCEPTS])
_DRUG_CODE = pa.array([d.code for d in DRUGS])
_DRUG_TERM = pa.array([d.term for d in DRUGS])
_DRUG_DOSE = pa.array([d.dosage for d in DRUGS])
_DRUG_QTY = np.array([d.quantity for d in DRUGS], dtype=np.float64)
_DRUG_UNIT = pa.array([d.unit for d in DRUGS])
_NOTES = pa.array(NOTES)


def dates(days: np.ndarray) -> pa.Array:
    """int32 epoch days → date32, NO_DATE → null."""
    days = np.asarray(days, dtype=np.int32)
    return pa.array(days.astype("datetime64[D]"), mask=days == NO_DATE)


def floats(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, mask=np.isnan(values))


def constant(text: str, n: int) -> pa.Array:
    return pc.take(pa.array([text]), pa.array(np.zeros(n, dtype=np.int32)))


def lookup(table: pa.Array, index: np.ndarray) -> pa.Array:
    """``table[index]``, null where index < 0."""
    index = np.asarray(index)
    return pc.take(table, pa.array(index.astype(np.int32), mask=index < 0))


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers.astype(np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(constant(prefix, len(numbers)), digits, "")


def _phones(kind: np.ndarray, num: np.ndarray) -> pa.Array:
    """Numbers from Ofcom's drama ranges: no real person can be rung by mistake."""
    tail = pc.utf8_lpad(pc.cast(pa.array(num.astype(np.int32)), pa.string()), 3, "0")
    n = len(kind)
    mobile = pc.binary_join_element_wise(constant("07700 900", n), tail, "")
    landline = pc.binary_join_element_wise(constant("0113 496 0", n), tail, "")
    phone = pc.if_else(pa.array(kind == 1), mobile, landline)
    return pc.if_else(pa.array(kind == 0), pa.nulls(n, pa.string()), phone)


def _demographics(f: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, pa.Array]:
    female = f["female"][rows]
    given = f["given"][rows].astype(np.int32) + np.where(female, 0, len(vocab.GIVEN_FEMALE))
    address = pc.binary_join_element_wise(
        pc.cast(pa.array(f["house"][rows].astype(np.int32)), pa.string()),
        pc.take(_STREETS, pa.array(f["street"][rows].astype(np.int32))),
        pc.take(_SUFFIXES, pa.array(f["suffix"][rows].astype(np.int32))),
        " ",
    )
    return {
        "title": lookup(_TITLES, f["title"][rows]),
        "given_name": pc.take(_GIVEN, pa.array(given)),
        "family_name": pc.take(_FAMILY, pa.array(f["family"][rows].astype(np.int32))),
        "sex": pc.take(_SEX, pa.array(female.astype(np.int8))),
        "address_line": address,
        "phone": _phones(f["phone_kind"][rows], f["phone_num"][rows]),
        "date_of_death": dates(f["death"][rows]),
    }


@dataclass
class AreaData:
    """Everything generated, before it is cut into sources."""

    practices: list[Organisation]
    trusts: list[Organisation]
    pop: Population
    clinical: Clinical
    people: People
    trust_data: list[TrustData]

    def practice_slice(self, k: int) -> tuple[int, int]:
        """The patients whose export lives at practice ``k`` (contiguous)."""
        lo, hi = np.searchsorted(self.pop.practice, [k, k + 1])
        return int(lo), int(hi)


def gp_patient_ids(lo: int, hi: int) -> pa.Array:
    return ids("", np.arange(lo, hi) + 100_001, 7)


def practice_tables(area: AreaData, k: int) -> dict[str, pa.Table]:
    """The CSV-shaped tables of practice ``k``."""
    pop, ev, md = area.pop, area.clinical.events, area.clinical.meds
    lo, hi = area.practice_slice(k)
    rows = np.arange(lo, hi)
    pid = gp_patient_ids(lo, hi)
    f = {name: getattr(pop, name) for name in ("female", "given", "family", "title", "house",
                                               "street", "suffix", "phone_kind", "phone_num",
                                               "death")}  # fmt: skip
    demo = _demographics(f, rows)
    patients = pa.table(
        {
            "patient_id": pid,
            "nhs_number": pa.array(pop.nhs[lo:hi]),
            "title": demo["title"],
            "given_name": demo["given_name"],
            "family_name": demo["family_name"],
            "birth_date": dates(pop.dob[lo:hi]),
            "sex": demo["sex"],
            "address_line": demo["address_line"],
            "postcode": pa.array(pop.postcode[lo:hi]),
            "phone": demo["phone"],
            "date_of_death": demo["date_of_death"],
        }
    )
    r_lo, r_hi = np.searchsorted(pop.reg_patient, [lo, hi])
    reg_local = pop.reg_patient[r_lo:r_hi] - lo
    practice_codes = pa.array([p.ods for p in area.practices])
    registrations = pa.table(
        {
            "patient_id": pc.take(pid, pa.array(reg_local)),
            "practice_ods": pc.take(practice_codes, pa.array(pop.reg_practice[r_lo:r_hi])),
            "start_date": dates(pop.reg_start[r_lo:r_hi]),
            "end_date": dates(pop.reg_end[r_lo:r_hi]),
        }
    )
    e_lo, e_hi = np.searchsorted(ev["patient"], [lo, hi])
    item = ev["item"][e_lo:e_hi].astype(np.int32)
    events = pa.table(
        {
            "patient_id": pc.take(pid, pa.array(ev["patient"][e_lo:e_hi] - lo)),
            "date": dates(ev["day"][e_lo:e_hi]),
            "kind": pc.take(_KIND, pa.array(_CONCEPT_KIND[item])),
            "system": constant("snomed", len(item)),
            "code": pc.take(_CONCEPT_CODE, pa.array(item)),
            "term": pc.take(_CONCEPT_TERM, pa.array(item)),
            "value": floats(ev["value"][e_lo:e_hi]),
            "unit": pc.take(_CONCEPT_UNIT, pa.array(item)),
            "note": lookup(_NOTES, ev["note"][e_lo:e_hi]),
        }
    )
    m_lo, m_hi = np.searchsorted(md["patient"], [lo, hi])
    drug = md["item"][m_lo:m_hi].astype(np.int32)
    medications = pa.table(
        {
            "patient_id": pc.take(pid, pa.array(md["patient"][m_lo:m_hi] - lo)),
            "date": dates(md["day"][m_lo:m_hi]),
            "system": constant("dmd", len(drug)),
            "code": pc.take(_DRUG_CODE, pa.array(drug)),
            "term": pc.take(_DRUG_TERM, pa.array(drug)),
            "dosage_text": pc.take(_DRUG_DOSE, pa.array(drug)),
            "quantity": floats(_DRUG_QTY[drug]),
            "quantity_unit": pc.take(_DRUG_UNIT, pa.array(drug)),
        }
    )
    return {
        "patients": patients,
        "registrations": registrations,
        "events": events,
        "medications": medications,
    }


def trust_tables(area: AreaData, t: int) -> dict[str, pa.Table]:
    """The CSV-shaped tables of trust ``t``: its patients (as it recorded them) and episodes."""
    trust, data = area.trusts[t], area.trust_data[t]
    f = area.people.fields
    demo = _demographics(f, data.person)
    n = len(data.person)
    pid = ids(trust.ods, np.arange(n) + 1, 7)
    nhs = pa.array(data.nhs)
    patients = pa.table(
        {
            "patient_id": pid,
            "nhs_number": pc.if_else(pc.equal(nhs, ""), pa.nulls(n, pa.string()), nhs),
            "title": demo["title"],
            "given_name": demo["given_name"],
            "family_name": demo["family_name"],
            "birth_date": dates(data.dob),
            "sex": demo["sex"],
            "address_line": demo["address_line"],
            "postcode": pa.array(data.postcode),
            "phone": demo["phone"],
            "date_of_death": demo["date_of_death"],
        }
    )
    ep = data.episodes
    m = len(ep["row"])
    procedures = pa.array(ep["procedures"], type=pa.string())
    episodes = pa.table(
        {
            "patient_id": pc.take(pid, pa.array(ep["row"])),
            "episode_id": ids(f"{trust.ods}-E", np.arange(m) + 1, 8),
            "admission_date": dates(ep["admission"]),
            "discharge_date": dates(ep["discharge"]),
            "admission_method": pa.array(ep["method"]),
            "diagnoses": pa.array(ep["diagnoses"], type=pa.string()),
            "procedures": pc.if_else(
                pc.equal(procedures, ""), pa.nulls(m, pa.string()), procedures
            ),
        }
    )
    return {"patients": patients, "episodes": episodes}


def source_tables(area: AreaData, org: Organisation) -> dict[str, pa.Table]:
    """The tables of one source, practice or trust."""
    if org.kind == "practice":
        return practice_tables(area, area.practices.index(org))
    return trust_tables(area, area.trusts.index(org))
