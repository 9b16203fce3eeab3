"""FHIR R4 resources (as JSON-shaped dicts) → canonical rows.

Shared by every FHIR shape (Bundle JSON, NDJSON, XML): each shape turns its input into the
dict form of FHIR JSON and hands resources to a ``FhirCollector``. The collector maps the few
fields Confide uses (see docs/formats.md) and never reads names, addresses, telecoms, narrative
or ``display`` text. A resource that cannot be mapped is rejected whole, with a reason that
names the field but never its value (values may be identifiers).

Conditions and Procedures that point at an inpatient Encounter through ``encounter`` become that
hospital episode's diagnoses (ICD-10) and procedures (OPCS-4) rather than events; the decision
waits until every resource is read, because an Encounter may come after the resources that
refer to it.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

from confide.common.codes import NHS_NUMBER_SYSTEM, is_dmd_concept, system_name
from confide.practice.model import EXTRACT_SCHEMAS, Rejection
from confide.practice.readers import status

# v3 ActCode classes that mean an inpatient stay (IMP and its two specialisations).
INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
ADMISSION_METHOD_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod"
)
UCUM = "http://unitsofmeasure.org"

_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_FULL_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T.*)?$")
_PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2})?$")

Key = tuple[str | None, str]  # (resource type or None when only a uuid is known, id)
Original = Callable[[], bytes]


class Unusable(Exception):
    """A resource Confide cannot map; the message is the rejection reason."""


class NotUsed(Exception):
    """A well-formed resource Confide has no use for (an outpatient Encounter, say); the
    message is the reason, ``key`` the short name counted in ``ignored``."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


NO_CODE = "{where} has no coded value (text only): Confide keeps coded data only"
REJECTED = "rejected"
IGNORED = "not used"


# --- typed access -------------------------------------------------------------------------


def as_list(value: Any, where: str) -> list[Any]:
    """A repeating element as a list (a lone object is accepted: XML cannot say it repeats)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    raise Unusable(f"{where} must be a list of objects")


def obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise Unusable(f"{where}.{key} must be an object")


def text(parent: dict[str, Any], key: str, where: str) -> str | None:
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise Unusable(f"{where}.{key} must be text")


def number(parent: dict[str, Any], key: str, where: str) -> float | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unusable(f"{where}.{key} must be a number")
    result = float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise Unusable(f"{where}.{key} must be a finite number")
    return result


def day(parent: dict[str, Any], key: str, where: str) -> date | None:
    """A FHIR date/dateTime/instant as a calendar date (the date as recorded, no time zone
    shift). Partial dates (``2020``, ``2020-05``) are rejected: Confide does not invent days."""
    raw = text(parent, key, where)
    if raw is None:
        return None
    match = _FULL_DATE.match(raw)
    if match is None:
        if _PARTIAL_DATE.match(raw):
            raise Unusable(f"{where}.{key} is a partial date; a full date (YYYY-MM-DD) is needed")
        raise Unusable(f"{where}.{key} is not a FHIR date")
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise Unusable(f"{where}.{key} is not a real calendar date") from None


def first_day(candidates: list[tuple[dict[str, Any], str, str]]) -> date | None:
    """The first full date among ``(parent, key, where)`` in order. A partial date (a year, or a
    year and month) falls back to the next candidate; when no candidate has a full date, the
    first partial one is the rejection reason (Confide does not invent days)."""
    partial: Unusable | None = None
    for parent, key, where in candidates:
        try:
            found = day(parent, key, where)
        except Unusable as exc:
            raw = parent.get(key)
            if isinstance(raw, str) and _PARTIAL_DATE.match(raw):
                partial = partial or exc
                continue
            raise
        if found is not None:
            return found
    if partial is not None:
        raise partial
    return None


COMPARATORS = frozenset({"<", "<=", ">=", ">"})


# --- references ---------------------------------------------------------------------------


def parse_reference(ref: str, fullurls: dict[str, Key]) -> Key | None:
    """Where a reference points: a bundle entry's fullUrl, ``Type/id`` (relative or absolute,
    with or without ``_history``) or a bare ``urn:uuid:``."""
    found = fullurls.get(ref)
    if found is not None:
        return found
    if ref.startswith("urn:uuid:"):
        return (None, ref.removeprefix("urn:uuid:"))
    match = _REF.search(ref)
    if match is None:
        return None
    return (match.group(1), match.group(2))


def entry_key(resource: dict[str, Any], full_url: str | None) -> Key | None:
    """The key other resources use to point at this one."""
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        return (rtype, rid)
    if full_url:
        parsed = parse_reference(full_url, {})
        if parsed is not None:
            return (rtype, parsed[1])
    return None


def same(a: Key | None, b: Key | None) -> bool:
    """Keys match when ids match and types agree (a uuid-only key matches any type)."""
    if a is None or b is None or a[1] != b[1]:
        return False
    return a[0] is None or b[0] is None or a[0] == b[0]


# --- codes --------------------------------------------------------------------------------


def pick_code(
    concept: dict[str, Any] | None, where: str, prefer: tuple[str, ...] = ("snomed",)
) -> tuple[str | None, str | None]:
    """(system, code) from a CodeableConcept: a coding in a preferred system, else the first
    coding whose system Confide knows, else the first code with system None (validation later
    rejects it as an unknown coding system). The raw URI is never carried forward."""
    if concept is None:
        return (None, None)
    known: list[tuple[str, str]] = []
    first_code: str | None = None
    for i, coding in enumerate(as_list(concept.get("coding"), f"{where}.coding")):
        if not isinstance(coding, dict):
            raise Unusable(f"{where}.coding must be a list of objects")
        here = f"{where}.coding[{i}]"
        code = text(coding, "code", here)
        name = system_name(text(coding, "system", here))
        if code is None:
            continue
        first_code = first_code or code
        if name is not None:
            known.append((name, code))
    for wanted in prefer:
        for name, code in known:
            if name == wanted:
                return (name, code)
    if known:
        return known[0]
    return (None, first_code)


def pick_medication_code(
    concept: dict[str, Any] | None, where: str
) -> tuple[str | None, str | None]:
    """A medication's (system, code), dm+d preferred; a SNOMED CT coding whose concept id is
    in the dm+d namespace is dm+d (the prescription service sends dm+d that way)."""
    system, code = pick_code(concept, where, ("dmd",))
    if system == "snomed" and is_dmd_concept(code):
        return ("dmd", code)
    return (system, code)


def quantity(q: dict[str, Any] | None, where: str) -> tuple[float | None, str | None]:
    """(value, unit): the UCUM code when the quantity is UCUM-coded (short and machine
    readable), else the unit text."""
    if q is None:
        return (None, None)
    value = number(q, "value", where)
    code = text(q, "code", where)
    unit = text(q, "unit", where)
    if code is not None and text(q, "system", where) == UCUM:
        return (value, code)
    return (value, unit or code)


def comparator(q: dict[str, Any] | None, where: str) -> str | None:
    """A quantity's comparator (``>60``: the value is a bound, not a measurement)."""
    if q is None:
        return None
    found = text(q, "comparator", where)
    if found is not None and found not in COMPARATORS:
        raise Unusable(f"{where}.comparator must be one of <, <=, >= or >")
    return found


# --- the collector ------------------------------------------------------------------------


@dataclass
class _Linked:
    """A Condition/Procedure that names an Encounter; placed once all Encounters are known."""

    kind: str
    key: Key | None
    encounter: Key
    local_id: str
    date: date | None
    event_code: tuple[str | None, str | None]
    hospital_code: str | None
    order: int


@dataclass
class _Episode:
    local_id: str
    episode_id: str
    admission_date: date | None
    discharge_date: date | None
    admission_method: str | None
    ranks: list[tuple[Key, int | None]]


@dataclass
class _PendingMedication:
    local_id: str
    target: Key
    date: date | None
    quantity: float | None
    unit: str | None
    file: str
    location: str
    original: Original
    resource_type: str


@dataclass
class Collected:
    """What a FHIR read produced: canonical tables, rejections, how many resources of each
    type were skipped because Confide does not use them, and where every resource went
    (``accounts[resource type][outcome]``: kept, or the outcome of its rejection)."""

    tables: dict[str, pa.Table]
    rejected: list[Rejection]
    ignored: dict[str, int]
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class Context:
    """Where a resource came from, for references and rejections."""

    file: str
    location: str
    original: Original
    fullurls: dict[str, Key] = field(default_factory=dict)
    full_url: str | None = None


class FhirCollector:
    """Accumulates canonical rows from FHIR resources, column by column."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, list[Any]]] = {
            name: {col: [] for col in schema.names} for name, schema in EXTRACT_SCHEMAS.items()
        }
        self.rejected: list[Rejection] = []
        self.ignored: Counter[str] = Counter()
        self._linked: list[_Linked] = []
        self._episodes: dict[Key, _Episode] = {}
        self._medications: dict[Key, tuple[str | None, str | None]] = {}
        self._pending_meds: list[_PendingMedication] = []
        self._order = 0
        self.accounts: Counter[tuple[str, str]] = Counter()

    # -- entry points --

    def add_bundle(self, bundle: dict[str, Any], ctx: Context, entry_original: Callable) -> None:
        """Every entry's resource, with references resolved through the entries' fullUrls.
        ``entry_original(i)`` gives the original bytes of entry ``i``."""
        try:
            entries = as_list(bundle.get("entry"), "Bundle.entry")
        except Unusable as exc:
            self.reject(ctx, str(exc))
            return
        fullurls: dict[str, Key] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            resource, url = entry.get("resource"), entry.get("fullUrl")
            if isinstance(resource, dict) and isinstance(url, str):
                key = entry_key(resource, url)
                if key is not None:
                    fullurls[url] = key
        for i, entry in enumerate(entries):
            where = f"{ctx.location}, entry {i + 1}" if ctx.location else f"entry {i + 1}"
            sub = Context(ctx.file, where, functools.partial(entry_original, i), fullurls, None)
            if not isinstance(entry, dict):
                self.reject(sub, "a Bundle entry must be an object")
                continue
            resource = entry.get("resource")
            if resource is None:  # a request-only entry (batch GET): nothing to read
                continue
            url = entry.get("fullUrl")
            sub.full_url = url if isinstance(url, str) else None
            self.add(resource, sub)

    def add(self, resource: Any, ctx: Context) -> None:
        """One resource (a nested Bundle is read as a bundle). Every resource ends in exactly
        one place: rows of the extract (kept) or the rejected list with its outcome."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            self.reject(ctx, "not a FHIR resource (no resourceType)")
            return
        rtype = resource["resourceType"]
        if rtype == "Bundle":
            self.add_bundle(resource, ctx, lambda _i: ctx.original())
            return
        ctx.location = f"{ctx.location} ({rtype})" if ctx.location else rtype
        handler = _HANDLERS.get(rtype)
        if handler is None:
            self.ignored[rtype] += 1
            self.reject(ctx, f"Confide does not read {rtype} resources", IGNORED, rtype)
            return
        found = status.verdict(resource)
        if found is not None:
            self.reject(ctx, found.reason, found.outcome, rtype)
            return
        try:
            handler(self, resource, ctx)
        except Unusable as exc:
            self.reject(ctx, str(exc), REJECTED, rtype)
        except NotUsed as exc:
            self.ignored[f"{rtype} ({exc.key})"] += 1
            self.reject(ctx, str(exc), IGNORED, rtype)
        else:
            self.accounts[(rtype, status.KEPT)] += 1

    def reject(
        self, ctx: Context, reason: str, outcome: str = "rejected", rtype: str | None = None
    ) -> None:
        self.rejected.append(
            Rejection(ctx.file, ctx.location, reason, ctx.original(), outcome, rtype)
        )
        self.accounts[(rtype or "(unreadable)", outcome)] += 1

    # -- helpers used by handlers --

    def _patient_of(self, resource: dict[str, Any], field_name: str, ctx: Context) -> str:
        rtype = resource["resourceType"]
        ref = obj(resource, field_name, rtype)
        target = self._resolve(ref, f"{rtype}.{field_name}", ctx)
        if target is None:
            raise Unusable(f"{rtype}.{field_name} does not say which patient it is about")
        if target[0] not in (None, "Patient"):
            raise Unusable(f"{rtype}.{field_name} refers to a {target[0]}, not a Patient")
        return target[1]

    def _resolve(self, ref: dict[str, Any] | None, where: str, ctx: Context) -> Key | None:
        if ref is None:
            return None
        raw = text(ref, "reference", where)
        if raw is None:
            return None
        return parse_reference(raw, ctx.fullurls)

    def _append(self, table: str, **values: Any) -> None:
        cols = self._rows[table]
        for name, column in cols.items():
            column.append(values.get(name))

    def _next(self) -> int:
        self._order += 1
        return self._order

    # -- handlers --

    def _patient(self, res: dict[str, Any], ctx: Context) -> None:
        key = entry_key(res, ctx.full_url)
        if key is None:
            raise Unusable("Patient has no id")
        nhs = None
        for i, ident in enumerate(as_list(res.get("identifier"), "Patient.identifier")):
            where = f"Patient.identifier[{i}]"
            if not isinstance(ident, dict):
                raise Unusable(f"{where} must be an object")
            if text(ident, "system", where) == NHS_NUMBER_SYSTEM:
                nhs = text(ident, "value", where)
                break
        birth = text(res, "birthDate", "Patient")
        sex = text(res, "gender", "Patient")
        postcode = _postcode(as_list(res.get("address"), "Patient.address"))
        death = day(res, "deceasedDateTime", "Patient")
        if "deceasedBoolean" in res and not isinstance(res["deceasedBoolean"], bool):
            raise Unusable("Patient.deceasedBoolean must be true or false")
        self._append(
            "patients",
            local_id=key[1],
            nhs_number=nhs,
            birth_date=birth,
            postcode=postcode,
            sex=sex,
            death_date=death,
        )

    def _episode_of_care(self, res: dict[str, Any], ctx: Context) -> None:
        local_id = self._patient_of(res, "patient", ctx)
        org = obj(res, "managingOrganization", "EpisodeOfCare")
        practice = None
        if org is not None:
            ident = obj(org, "identifier", "EpisodeOfCare.managingOrganization")
            if ident is not None:
                practice = text(ident, "value", "EpisodeOfCare.managingOrganization.identifier")
        period = obj(res, "period", "EpisodeOfCare") or {}
        self._append(
            "registrations",
            local_id=local_id,
            practice=practice,
            start_date=day(period, "start", "EpisodeOfCare.period"),
            end_date=day(period, "end", "EpisodeOfCare.period"),
        )

    def _condition(self, res: dict[str, Any], ctx: Context) -> None:
        local_id = self._patient_of(res, "subject", ctx)
        concept = obj(res, "code", "Condition")
        when = first_day([(res, "onsetDateTime", "Condition"), (res, "recordedDate", "Condition")])
        self._coded(res, ctx, "condition", local_id, concept, when, "icd10")

    def _procedure(self, res: dict[str, Any], ctx: Context) -> None:
        local_id = self._patient_of(res, "subject", ctx)
        concept = obj(res, "code", "Procedure")
        period = obj(res, "performedPeriod", "Procedure") or {}
        when = first_day(
            [
                (res, "performedDateTime", "Procedure"),
                (period, "start", "Procedure.performedPeriod"),
            ]
        )
        self._coded(res, ctx, "procedure", local_id, concept, when, "opcs4")

    def _coded(
        self,
        res: dict[str, Any],
        ctx: Context,
        kind: str,
        local_id: str,
        concept: dict[str, Any] | None,
        when: date | None,
        hospital_system: str,
    ) -> None:
        rtype = res["resourceType"]
        code = pick_code(concept, f"{rtype}.code")
        if code[1] is None:
            raise Unusable(NO_CODE.format(where=f"{rtype}.code"))
        encounter = self._resolve(obj(res, "encounter", rtype), f"{rtype}.encounter", ctx)
        if encounter is None:
            self._append(
                "events", local_id=local_id, kind=kind, system=code[0], code=code[1], date=when
            )
            return
        hospital = pick_code(concept, f"{rtype}.code", (hospital_system,))
        self._linked.append(
            _Linked(
                kind=kind,
                key=entry_key(res, ctx.full_url),
                encounter=(encounter[0] or "Encounter", encounter[1]),
                local_id=local_id,
                date=when,
                event_code=code,
                hospital_code=hospital[1] if hospital[0] == hospital_system else None,
                order=self._next(),
            )
        )

    def _observation(self, res: dict[str, Any], ctx: Context) -> None:
        local_id = self._patient_of(res, "subject", ctx)
        period = obj(res, "effectivePeriod", "Observation") or {}
        when = first_day(
            [
                (res, "effectiveDateTime", "Observation"),
                (period, "start", "Observation.effectivePeriod"),
                (res, "effectiveInstant", "Observation"),
                (res, "issued", "Observation"),
            ]
        )
        system, code = pick_code(obj(res, "code", "Observation"), "Observation.code")
        if code is None:
            raise Unusable(NO_CODE.format(where="Observation.code"))
        rows = [(system, code, *_observed_value(res, "Observation"))]
        for i, comp in enumerate(as_list(res.get("component"), "Observation.component")):
            where = f"Observation.component[{i}]"
            if not isinstance(comp, dict):
                raise Unusable(f"{where} must be an object")
            if comp.get("valueQuantity") is None and comp.get("valueCodeableConcept") is None:
                continue
            c_system, c_code = pick_code(obj(comp, "code", where), f"{where}.code")
            if c_code is None:
                raise Unusable(NO_CODE.format(where=f"{where}.code"))
            rows.append((c_system, c_code, *_observed_value(comp, where)))
        for system, code, value, unit, comp_op, value_system, value_code in rows:
            self._append(
                "events",
                local_id=local_id,
                kind="observation",
                system=system,
                code=code,
                date=when,
                value=value,
                unit=unit,
                comparator=comp_op,
                value_system=value_system,
                value_code=value_code,
            )

    def _allergy(self, res: dict[str, Any], ctx: Context) -> None:
        local_id = self._patient_of(res, "patient", ctx)
        when = first_day(
            [
                (res, "onsetDateTime", "AllergyIntolerance"),
                (res, "recordedDate", "AllergyIntolerance"),
            ]
        )
        self._simple_event(res, "allergy", local_id, "code", when)

    def _immunization(self, res: dict[str, Any], ctx: Context) -> None:
        local_id = self._patient_of(res, "patient", ctx)
        when = first_day(
            [
                (res, "occurrenceDateTime", "Immunization"),
                (res, "recorded", "Immunization"),
            ]
        )
        self._simple_event(res, "immunisation", local_id, "vaccineCode", when)

    def _simple_event(
        self, res: dict[str, Any], kind: str, local_id: str, field_name: str, when: date | None
    ) -> None:
        rtype = res["resourceType"]
        system, code = pick_code(obj(res, field_name, rtype), f"{rtype}.{field_name}")
        if code is None:
            raise Unusable(NO_CODE.format(where=f"{rtype}.{field_name}"))
        self._append("events", local_id=local_id, kind=kind, system=system, code=code, date=when)

    def _medication(self, res: dict[str, Any], ctx: Context) -> None:
        key = entry_key(res, ctx.full_url)
        code = pick_medication_code(obj(res, "code", "Medication"), "Medication.code")
        if key is not None:
            self._medications[key] = code

    def _medication_use(self, res: dict[str, Any], ctx: Context) -> None:
        rtype = res["resourceType"]
        local_id = self._patient_of(res, "subject", ctx)
        if rtype == "MedicationRequest":
            when = day(res, "authoredOn", rtype)
            dispense = obj(res, "dispenseRequest", rtype) or {}
            qty, unit = quantity(
                obj(dispense, "quantity", f"{rtype}.dispenseRequest"),
                f"{rtype}.dispenseRequest.quantity",
            )
        else:
            period = obj(res, "effectivePeriod", rtype) or {}
            when = first_day(
                [
                    (res, "effectiveDateTime", rtype),
                    (period, "start", f"{rtype}.effectivePeriod"),
                    (res, "dateAsserted", rtype),
                ]
            )
            qty, unit = None, None
        concept = obj(res, "medicationCodeableConcept", rtype)
        if concept is not None:
            system, code = pick_medication_code(concept, f"{rtype}.medicationCodeableConcept")
        else:
            ref = obj(res, "medicationReference", rtype)
            raw = text(ref, "reference", f"{rtype}.medicationReference") if ref else None
            if raw is None:
                raise Unusable(f"{rtype} has no medicationCodeableConcept or medicationReference")
            if raw.startswith("#"):
                system, code = _contained_medication(res, raw[1:], rtype)
            else:
                target = parse_reference(raw, ctx.fullurls)
                if target is None:
                    raise Unusable(f"{rtype}.medicationReference is not a reference Confide reads")
                self._pending_meds.append(
                    _PendingMedication(
                        local_id,
                        target,
                        when,
                        qty,
                        unit,
                        ctx.file,
                        ctx.location,
                        ctx.original,
                        rtype,
                    )
                )
                return
        if code is None:
            raise Unusable(NO_CODE.format(where=f"{rtype}.medicationCodeableConcept"))
        self._append(
            "medications",
            local_id=local_id,
            system=system,
            code=code,
            date=when,
            quantity=qty,
            quantity_unit=unit,
        )

    def _encounter(self, res: dict[str, Any], ctx: Context) -> None:
        klass = res.get("class")
        if isinstance(klass, list) and len(klass) == 1:  # XML cannot say it does not repeat
            klass = klass[0]
        if klass is not None and not isinstance(klass, dict):
            raise Unusable("Encounter.class must be an object")
        key = entry_key(res, ctx.full_url)
        if klass is None or text(klass, "code", "Encounter.class") not in INPATIENT_CLASSES:
            raise NotUsed(
                "not inpatient",
                "an Encounter that is not an inpatient stay: Confide reads hospital episodes only",
            )
        if key is None:
            raise Unusable("an inpatient Encounter has no id")
        local_id = self._patient_of(res, "subject", ctx)
        episode_id = None
        for i, ident in enumerate(as_list(res.get("identifier"), "Encounter.identifier")):
            if isinstance(ident, dict):
                episode_id = text(ident, "value", f"Encounter.identifier[{i}]")
                break
        period = obj(res, "period", "Encounter") or {}
        ranks: list[tuple[Key, int | None]] = []
        for i, diag in enumerate(as_list(res.get("diagnosis"), "Encounter.diagnosis")):
            where = f"Encounter.diagnosis[{i}]"
            if not isinstance(diag, dict):
                raise Unusable(f"{where} must be an object")
            target = self._resolve(obj(diag, "condition", where), f"{where}.condition", ctx)
            rank = number(diag, "rank", where)
            if target is not None:
                ranks.append((target, None if rank is None else int(rank)))
        self._episodes[key] = _Episode(
            local_id=local_id,
            episode_id=episode_id or key[1],
            admission_date=day(period, "start", "Encounter.period"),
            discharge_date=day(period, "end", "Encounter.period"),
            admission_method=_admission_method(res),
            ranks=ranks,
        )

    # -- the end --

    def finish(self) -> Collected:
        """Place linked Conditions/Procedures, resolve medication references, build tables."""
        self._place_linked()
        self._place_medications()
        tables = {
            name: pa.table(cols, schema=EXTRACT_SCHEMAS[name])
            for name, cols in self._rows.items()
            if cols["local_id"]
        }
        accounts: dict[str, dict[str, int]] = {}
        for (rtype, outcome), n in sorted(self.accounts.items()):
            if n:
                accounts.setdefault(rtype, {})[outcome] = n
        return Collected(tables, self.rejected, dict(self.ignored), accounts)

    def _place_linked(self) -> None:
        by_episode: dict[Key, list[_Linked]] = {}
        for item in self._linked:
            episode = _find(self._episodes, item.encounter)
            if episode is None or item.hospital_code is None:
                system, code = item.event_code
                self._append(
                    "events",
                    local_id=item.local_id,
                    kind=item.kind,
                    system=system,
                    code=code,
                    date=item.date,
                )
            else:
                by_episode.setdefault(episode, []).append(item)
        for key, ep in self._episodes.items():
            items = by_episode.get(key, [])

            def rank(item: _Linked, ep: _Episode = ep) -> tuple[int, int]:
                for target, r in ep.ranks:
                    if same(target, item.key):
                        return (r if r is not None else 1 << 30, item.order)
                return (1 << 31, item.order)

            items.sort(key=rank)
            self._append(
                "episodes",
                local_id=ep.local_id,
                episode_id=ep.episode_id,
                admission_date=ep.admission_date,
                discharge_date=ep.discharge_date,
                admission_method=ep.admission_method,
                diagnoses=[i.hospital_code for i in items if i.kind == "condition"],
                procedures=[i.hospital_code for i in items if i.kind == "procedure"],
            )

    def _place_medications(self) -> None:
        for med in self._pending_meds:
            found = _find(self._medications, med.target)
            if found is None or self._medications[found][1] is None:
                why = (
                    "the Medication it refers to is not in the export"
                    if found is None
                    else NO_CODE.format(where="the Medication it refers to")
                )
                self.rejected.append(
                    Rejection(
                        med.file,
                        med.location,
                        why,
                        med.original(),
                        REJECTED,
                        med.resource_type,
                    )
                )
                self.accounts[(med.resource_type, status.KEPT)] -= 1
                self.accounts[(med.resource_type, REJECTED)] += 1
                continue
            system, code = self._medications[found]
            self._append(
                "medications",
                local_id=med.local_id,
                system=system,
                code=code,
                date=med.date,
                quantity=med.quantity,
                quantity_unit=med.unit,
            )


def _observed_value(
    res: dict[str, Any], where: str
) -> tuple[float | None, str | None, str | None, str | None, str | None]:
    """(value, unit, comparator, value system, value code) of an Observation or component:
    a quantity (with its comparator), or a coded answer."""
    q = obj(res, "valueQuantity", where)
    value, unit = quantity(q, f"{where}.valueQuantity")
    op = comparator(q, f"{where}.valueQuantity")
    answer = obj(res, "valueCodeableConcept", where)
    value_system, value_code = pick_code(answer, f"{where}.valueCodeableConcept")
    return value, unit, op, value_system, value_code


def _find(mapping: dict[Key, Any], target: Key) -> Key | None:
    if target in mapping:
        return target
    if target[0] is None:
        for key in mapping:
            if key[1] == target[1]:
                return key
    return None


def _postcode(addresses: list[Any]) -> str | None:
    """The home address's postcode, else the first current address's."""
    best: str | None = None
    for i, address in enumerate(addresses):
        where = f"Patient.address[{i}]"
        if not isinstance(address, dict):
            raise Unusable(f"{where} must be an object")
        code = text(address, "postalCode", where)
        use = text(address, "use", where)
        if code is None or use == "old":
            continue
        if use == "home":
            return code
        best = best or code
    return best


def _admission_method(res: dict[str, Any]) -> str | None:
    """The UK Core admission method extension's code, else ``hospitalization.admitSource``."""
    hosp = obj(res, "hospitalization", "Encounter") or {}
    for ext in as_list(hosp.get("extension"), "Encounter.hospitalization.extension"):
        if isinstance(ext, dict) and ext.get("url") == ADMISSION_METHOD_EXTENSION:
            concept = obj(ext, "valueCodeableConcept", "admission method extension")
            for coding in as_list((concept or {}).get("coding"), "admission method coding"):
                if isinstance(coding, dict):
                    return text(coding, "code", "admission method coding")
    source = obj(hosp, "admitSource", "Encounter.hospitalization")
    for coding in as_list((source or {}).get("coding"), "admitSource.coding"):
        if isinstance(coding, dict):
            return text(coding, "code", "Encounter.hospitalization.admitSource.coding")
    return None


def _contained_medication(
    res: dict[str, Any], local: str, rtype: str
) -> tuple[str | None, str | None]:
    for item in as_list(res.get("contained"), f"{rtype}.contained"):
        if isinstance(item, dict) and item.get("id") == local:
            if item.get("resourceType") != "Medication":
                raise Unusable(f"{rtype}.medicationReference points at a contained non-Medication")
            return pick_medication_code(obj(item, "code", "Medication"), "Medication.code")
    raise Unusable(f"{rtype}.medicationReference points at a contained Medication that is missing")


_HANDLERS: dict[str, Callable[[FhirCollector, dict[str, Any], Context], None]] = {
    "Patient": FhirCollector._patient,
    "EpisodeOfCare": FhirCollector._episode_of_care,
    "Condition": FhirCollector._condition,
    "Procedure": FhirCollector._procedure,
    "Observation": FhirCollector._observation,
    "Medication": FhirCollector._medication,
    "MedicationStatement": FhirCollector._medication_use,
    "MedicationRequest": FhirCollector._medication_use,
    "Encounter": FhirCollector._encounter,
    "AllergyIntolerance": FhirCollector._allergy,
    "Immunization": FhirCollector._immunization,
}
