"""Coding systems and the few codes Confide itself acts on, in one table that is easy to correct.

FHIR names a coding system by URI; Confide's stores use short names. Several URIs are in use for
the same system in the wild, so each short name accepts aliases.
"""

from __future__ import annotations

import re

SYSTEM_URIS: dict[str, tuple[str, ...]] = {
    "snomed": ("http://snomed.info/sct",),
    "dmd": ("https://dmd.nhs.uk", "http://dmd.nhs.uk", "https://fhir.nhs.uk/CodeSystem/dmd"),
    "read2": ("http://read.info/readv2", "urn:oid:2.16.840.1.113883.2.1.6.2"),
    "icd10": (
        "http://hl7.org/fhir/sid/icd-10",
        "http://hl7.org/fhir/sid/icd-10-uk",
        "https://fhir.hl7.org.uk/Id/icd-10",
    ),
    "opcs4": (
        "http://www.datadictionary.nhs.uk/data_dictionary/attributes/o/opcs/opcs_classification_version_4_de.asp",
        "https://fhir.hl7.org.uk/Id/opcs-4",
        "http://fhir.nhs.net/CodeSystem/opcs-4",
        "http://fhir.nhs.uk/CodeSystem/opcs-4",
    ),
    "loinc": ("http://loinc.org",),
    "ucum": ("http://unitsofmeasure.org",),
}

# The URI Confide writes for each system (the first alias).
PREFERRED_URI = {name: uris[0] for name, uris in SYSTEM_URIS.items()}
_BY_URI = {uri.rstrip("/"): name for name, uris in SYSTEM_URIS.items() for uri in uris}

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"


def system_name(uri: str | None) -> str | None:
    """The short name for a coding system URI, or None when Confide does not know it."""
    if not uri:
        return None
    return _BY_URI.get(uri.rstrip("/"))


# Type 1 objection ("Dissent from secondary use of GP patient identifiable data") and its
# withdrawal. The latest of the two by date is the patient's current state.
# The withdrawal SNOMED code is well-formed but not confirmed against the release: correct it here.
TYPE1_DISSENT = {("snomed", "827241000000103"), ("read2", "9Nu0")}
TYPE1_WITHDRAWN = {("snomed", "827261000000102"), ("read2", "9Nu1")}
TYPE2_RETIRED = {("snomed", "881561000000100")}

# dm+d concepts carry SNOMED CT identifiers in the NHS dm+d namespace: the prescription service
# and GP systems send them under the SNOMED CT system URI. A long-format SCTID ends in a
# 7-digit namespace, a 2-digit partition ("10": a concept in an extension) and a check digit.
DMD_NAMESPACES = frozenset({"1000001"})


def is_dmd_concept(code: str | None) -> bool:
    """True when ``code``, sent as a medication under the SNOMED CT system, is a dm+d concept:
    an id in a dm+d namespace (UK drug extension), or an international core concept id
    (partition "00": dm+d's older VTMs and VMPs, such as 322237000, kept their core ids). An
    id from any other extension (the UK clinical extension, say) is not a medicine."""
    if not code or not code.isdigit() or len(code) < 6:
        return False
    if code[-3:-1] == "00":
        return True
    return len(code) >= 11 and code[-3:-1] == "10" and code[-10:-3] in DMD_NAMESPACES


# --- code format checks -------------------------------------------------------------------

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_VERHOEFF_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_ok(digits: str) -> bool:
    """True when the last digit is the Verhoeff check digit of the others (SNOMED CT, dm+d)."""
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def verhoeff_digit(digits: str) -> str:
    """The Verhoeff check digit to append to ``digits``."""
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[(i + 1) % 8][int(ch)]]
    return str(_VERHOEFF_INV[check])


_SCTID = re.compile(r"^[1-9][0-9]{5,17}$")
_ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.?[0-9X]{1,2})?[A-Z0-9]?$")
_OPCS4 = re.compile(r"^[A-Z][0-9]{2}(\.?[0-9]{1,2})?$")
_READ2 = re.compile(r"^[0-9A-Za-z.]{5}$|^[0-9A-Za-z]{1,5}$")


def why_code_invalid(system: str | None, code: str | None) -> str | None:
    """A reason a person can act on when ``code`` is not a well-formed code of ``system``."""
    if not code:
        return "the code is missing"
    if system is None:
        return "the coding system is not one Confide accepts (SNOMED CT, dm+d, ICD-10, OPCS-4)"
    if system in ("snomed", "dmd"):
        if not _SCTID.match(code):
            return f"{code!r} is not a {system.upper()} identifier (6 to 18 digits)"
        if not verhoeff_ok(code):
            return f"{code!r} is not a valid {system.upper()} identifier (its check digit is wrong)"
        return None
    if system == "icd10":
        return None if _ICD10.match(code) else f"{code!r} is not an ICD-10 code"
    if system == "opcs4":
        return None if _OPCS4.match(code) else f"{code!r} is not an OPCS-4 code"
    if system == "read2":
        return None if _READ2.match(code) else f"{code!r} is not a Read v2 code"
    return None
