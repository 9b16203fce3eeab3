"""FHIR R4 resources (UK Core style) built from one source's CSV-shaped tables.

Each builder walks one table's columns as Python lists and yields ``(patient_row, resource)``
in patient order, so the NDJSON writer can stream them and the Bundle writers can cut them into
groups of patients. Free text (narrative, notes, display terms, dosage text) is deliberately
present: the practice agent has to drop it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from confide.common.codes import NHS_NUMBER_SYSTEM, ODS_SYSTEM, PREFERRED_URI
from confide.synth.codelists import ADMISSION_METHOD_TERMS

UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ADMISSION_METHOD_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
XHTML = "http://www.w3.org/1999/xhtml"
_SYSTEM_URI = {"snomed": PREFERRED_URI["snomed"], "dmd": PREFERRED_URI["dmd"]}

Ref = Callable[[str, str], str]
Item = tuple[int, dict]


def ndjson_ref(resource_type: str, rid: str) -> str:
    """Reference style of bulk NDJSON files: ``Patient/<id>``."""
    return f"{resource_type}/{rid}"


def bundle_ref(resource_type: str, rid: str) -> str:
    """Reference style inside a Bundle: the entry's ``urn:uuid`` fullUrl."""
    del resource_type
    return f"urn:uuid:{rid}"


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` random (version 4 shaped) UUIDs, reproducible from ``rng``."""
    raw = rng.bytes(16 * n).hex()
    out = []
    for i in range(0, 32 * n, 32):
        h = raw[i : i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")
    return out


def _column(table: pa.Table, name: str) -> list:
    """A column as Python values; dates as ISO strings (cheaper than date objects)."""
    col = table.column(name)
    if pa.types.is_date(col.type):
        col = pc.cast(col, pa.string())
    return col.to_pylist()


def _row_index(patient_ids: pa.Array, table: pa.Table) -> list[int]:
    """Each row's position in the source's patient table."""
    return pc.index_in(table.column("patient_id"), value_set=patient_ids).to_pylist()


@dataclass
class SourceContext:
    """What every builder needs: who the source is and the patients' resource ids."""

    ods: str
    kind: str
    patient_ids: list[str]  # resource id of each patient row
    gp_ods: list[str | None]  # each patient's registered practice
    ref: Ref
    rng: np.random.Generator


_CITIES = {"LS": "Leeds", "BD": "Bradford", "WF": "Wakefield", "HG": "Harrogate", "YO": "York",
           "HX": "Halifax", "HD": "Huddersfield"}  # fmt: skip


def _city(postcode: str) -> str:
    return _CITIES.get(postcode[:2], "")


def patients(ctx: SourceContext, table: pa.Table) -> Iterator[Item]:
    """Patient resources with identifiers, names, address, telecom and a narrative."""
    cols = {name: _column(table, name) for name in table.column_names}
    for i, rid in enumerate(ctx.patient_ids):
        title, given, family = cols["title"][i], cols["given_name"][i], cols["family_name"][i]
        birth, address, postcode = (
            cols["birth_date"][i],
            cols["address_line"][i],
            cols["postcode"][i],
        )
        name = {"use": "official", "family": family, "given": [given]}
        if title:
            name["prefix"] = [title]
        full = " ".join(x for x in (title, given, family) if x)
        res: dict = {
            "resourceType": "Patient",
            "id": rid,
            "meta": {"profile": [UK_CORE + "Patient"]},
            "text": {
                "status": "generated",
                "div": f'<div xmlns="{XHTML}">{escape(full)}, born {birth}, '
                f"{escape(address)}, {escape(postcode)}</div>",
            },
        }
        if cols["nhs_number"][i]:
            res["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": cols["nhs_number"][i]}]
        res["name"] = [name]
        if cols["phone"][i]:
            mobile = cols["phone"][i].startswith("07")
            res["telecom"] = [
                {
                    "system": "phone",
                    "value": cols["phone"][i],
                    "use": "mobile" if mobile else "home",
                }
            ]
        res["gender"] = cols["sex"][i]
        res["birthDate"] = birth
        if cols["date_of_death"][i]:
            res["deceasedDateTime"] = cols["date_of_death"][i]
        res["address"] = [
            {"use": "home", "line": [address], "city": _city(postcode), "postalCode": postcode}
        ]
        if ctx.gp_ods[i]:
            res["generalPractitioner"] = [
                {
                    "type": "Organization",
                    "identifier": {"system": ODS_SYSTEM, "value": ctx.gp_ods[i]},
                }
            ]
        yield i, res


def registrations(ctx: SourceContext, table: pa.Table, patient_ids: pa.Array) -> Iterator[Item]:
    """EpisodeOfCare per practice registration."""
    rows = _row_index(patient_ids, table)
    ods, start, end = (_column(table, c) for c in ("practice_ods", "start_date", "end_date"))
    for j, (i, rid) in enumerate(zip(rows, uuids(ctx.rng, len(rows)), strict=True)):
        period = {"start": start[j]}
        if end[j]:
            period["end"] = end[j]
        yield (
            i,
            {
                "resourceType": "EpisodeOfCare",
                "id": rid,
                "status": "finished" if end[j] else "active",
                "patient": {"reference": ctx.ref("Patient", ctx.patient_ids[i])},
                "managingOrganization": {"identifier": {"system": ODS_SYSTEM, "value": ods[j]}},
                "period": period,
            },
        )


def _coding(system: str, code: str, display: str | None) -> dict:
    coding = {"system": _SYSTEM_URI.get(system, system), "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": display} if display else {"coding": [coding]}


def events(ctx: SourceContext, table: pa.Table, patient_ids: pa.Array) -> Iterator[Item]:
    """Condition, Observation, Procedure, AllergyIntolerance or Immunization per GP event."""
    rows = _row_index(patient_ids, table)
    names = ("date", "kind", "system", "code", "term", "value", "unit", "note")
    date, kind, system, code, term, value, unit, note = (_column(table, c) for c in names)
    for j, (i, rid) in enumerate(zip(rows, uuids(ctx.rng, len(rows)), strict=True)):
        subject = {"reference": ctx.ref("Patient", ctx.patient_ids[i])}
        concept = _coding(system[j], code[j], term[j])
        if kind[j] == "condition":
            res: dict = {
                "resourceType": "Condition",
                "id": rid,
                "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
                "category": [
                    {"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}
                ],
                "code": concept,
                "subject": subject,
                "onsetDateTime": date[j],
                "recordedDate": date[j],
            }
        elif kind[j] == "observation":
            res = {
                "resourceType": "Observation",
                "id": rid,
                "status": "final",
                "code": concept,
                "subject": subject,
                "effectiveDateTime": date[j],
            }
            if value[j] is not None:
                res["valueQuantity"] = {
                    "value": value[j],
                    "unit": unit[j],
                    "system": PREFERRED_URI["ucum"],
                    "code": unit[j],
                }
        elif kind[j] == "allergy":
            res = {
                "resourceType": "AllergyIntolerance",
                "id": rid,
                "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
                "code": concept,
                "patient": subject,
                "recordedDate": date[j],
            }
        elif kind[j] == "immunisation":
            res = {
                "resourceType": "Immunization",
                "id": rid,
                "status": "completed",
                "vaccineCode": concept,
                "patient": subject,
                "occurrenceDateTime": date[j],
            }
        else:
            res = {
                "resourceType": "Procedure",
                "id": rid,
                "status": "completed",
                "code": concept,
                "subject": subject,
                "performedDateTime": date[j],
            }
        if note[j]:
            res["note"] = [{"text": note[j]}]
        yield i, res


def medications(ctx: SourceContext, table: pa.Table, patient_ids: pa.Array) -> Iterator[Item]:
    """MedicationStatement per issue, with the prescriber's dosage text."""
    rows = _row_index(patient_ids, table)
    names = ("date", "system", "code", "term", "dosage_text")
    date, system, code, term, dosage = (_column(table, c) for c in names)
    for j, (i, rid) in enumerate(zip(rows, uuids(ctx.rng, len(rows)), strict=True)):
        yield (
            i,
            {
                "resourceType": "MedicationStatement",
                "id": rid,
                "status": "completed",
                "medicationCodeableConcept": _coding(system[j], code[j], term[j]),
                "subject": {"reference": ctx.ref("Patient", ctx.patient_ids[i])},
                "effectiveDateTime": date[j],
                "dateAsserted": date[j],
                "dosage": [{"text": dosage[j]}],
            },
        )


def episodes(ctx: SourceContext, table: pa.Table, patient_ids: pa.Array) -> Iterator[Item]:
    """Encounter (class IMP) per admission, with its ICD-10 Conditions and OPCS-4 Procedures.

    The Encounter follows its Conditions and Procedures so every reference points backwards.
    """
    rows = _row_index(patient_ids, table)
    names = ("episode_id", "admission_date", "discharge_date", "admission_method", "diagnoses",
             "procedures")  # fmt: skip
    ep_id, adm, dis, method, diag, proc = (_column(table, c) for c in names)
    provider = {"identifier": {"system": ODS_SYSTEM, "value": ctx.ods}}
    for j, i in enumerate(rows):
        subject = {"reference": ctx.ref("Patient", ctx.patient_ids[i])}
        codes = diag[j].split(";") if diag[j] else []
        procs = proc[j].split(";") if proc[j] else []
        ids = uuids(ctx.rng, 1 + len(codes) + len(procs))
        enc_ref = {"reference": ctx.ref("Encounter", ids[0])}
        diagnosis = []
        for rank, (code, rid) in enumerate(zip(codes, ids[1:], strict=False), start=1):
            yield (
                i,
                {
                    "resourceType": "Condition",
                    "id": rid,
                    "category": [
                        {"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}
                    ],
                    "code": {"coding": [{"system": PREFERRED_URI["icd10"], "code": code}]},
                    "subject": subject,
                    "encounter": enc_ref,
                    "recordedDate": adm[j],
                },
            )
            diagnosis.append({"condition": {"reference": ctx.ref("Condition", rid)}, "rank": rank})
        for code, rid in zip(procs, ids[1 + len(codes) :], strict=True):
            yield (
                i,
                {
                    "resourceType": "Procedure",
                    "id": rid,
                    "status": "completed",
                    "code": {"coding": [{"system": PREFERRED_URI["opcs4"], "code": code}]},
                    "subject": subject,
                    "encounter": enc_ref,
                    "performedDateTime": adm[j],
                },
            )
        period = {"start": adm[j]}
        if dis[j]:
            period["end"] = dis[j]
        enc: dict = {
            "resourceType": "Encounter",
            "id": ids[0],
            "identifier": [{"value": ep_id[j], "assigner": {"identifier": provider["identifier"]}}],
            "status": "finished" if dis[j] else "in-progress",
            "class": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
            "subject": subject,
            "period": period,
            "diagnosis": diagnosis,
            "hospitalization": {
                "admitSource": {
                    "coding": [
                        {
                            "system": ADMISSION_METHOD_SYSTEM,
                            "code": method[j],
                            "display": ADMISSION_METHOD_TERMS.get(method[j], ""),
                        }
                    ]
                }
            },
            "serviceProvider": provider,
        }
        if not diagnosis:
            del enc["diagnosis"]
        yield i, enc


def all_items(ctx: SourceContext, tables: dict[str, pa.Table]) -> list[Iterator[Item]]:
    """One iterator per table, each in patient order (Patient first)."""
    pid = tables["patients"].column("patient_id").combine_chunks()
    out = [patients(ctx, tables["patients"])]
    builders = {
        "registrations": registrations,
        "events": events,
        "medications": medications,
        "episodes": episodes,
    }
    out += [build(ctx, tables[name], pid) for name, build in builders.items() if name in tables]
    return out
