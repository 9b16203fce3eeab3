"""Status rules: which FHIR records are events, and which are not, by their status elements.

A record entered in error is not data at all; a refuted or differential diagnosis, a cancelled
prescription or a procedure not done is data about something that did not happen. Neither is an
event. Every record that is not kept goes to the practice's rejected list with the rule's reason,
so nothing is lost silently. The table in docs/practices.md is generated from ``RULES``.

A status missing from the resource keeps it (older exports often omit it); a status value not in
the table is unknown and keeps it too, with the value the resource's type defines as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KEPT = "kept"
DROPPED = "dropped"  # entered in error: never data
NOT_EVENT = "not an event"  # real information, but about something that did not happen
PRESENT = "(any)"  # a rule that applies whenever the element is there


@dataclass(frozen=True)
class Rule:
    resource: str
    element: str  # a code element, or a CodeableConcept (its first coding's code is read)
    values: tuple[str, ...]
    outcome: str
    why: str


def _rules() -> tuple[Rule, ...]:
    eie = ("entered-in-error",)
    error_why = "recorded in error at source"
    out: list[Rule] = []

    def add(resource: str, element: str, kept: str, not_event: str, why: str) -> None:
        out.append(Rule(resource, element, tuple(kept.split()), KEPT, "a record of what happened"))
        if not_event:
            out.append(Rule(resource, element, tuple(not_event.split()), NOT_EVENT, why))
        out.append(Rule(resource, element, eie, DROPPED, error_why))

    add(
        "Condition",
        "clinicalStatus",
        "active recurrence relapse inactive remission resolved",
        "",
        "",
    )
    add(
        "Condition",
        "verificationStatus",
        "confirmed provisional",
        "unconfirmed differential refuted",
        "a diagnosis considered and not made",
    )
    add(
        "Observation",
        "status",
        "preliminary final amended corrected appended unknown",
        "registered cancelled",
        "no result was recorded",
    )
    add(
        "Procedure",
        "status",
        "completed in-progress on-hold stopped unknown",
        "preparation not-done",
        "the procedure was not performed",
    )
    add(
        "MedicationRequest",
        "status",
        "active completed on-hold stopped unknown",
        "cancelled draft",
        "the prescription was never issued",
    )
    add(
        "MedicationStatement",
        "status",
        "active completed on-hold stopped unknown",
        "intended not-taken",
        "the medication was not taken",
    )
    add(
        "Encounter",
        "status",
        "finished in-progress arrived triaged onleave unknown",
        "planned cancelled",
        "the stay did not take place",
    )
    add(
        "EpisodeOfCare",
        "status",
        "active finished onhold",
        "planned waitlist cancelled",
        "the registration did not take place",
    )
    out.append(
        Rule(
            "EpisodeOfCare",
            "type",
            (PRESENT,),
            NOT_EVENT,
            "a typed episode of care (community, mental health, …) is not a GP registration",
        )
    )
    add(
        "AllergyIntolerance",
        "clinicalStatus",
        "active inactive resolved",
        "",
        "",
    )
    add(
        "AllergyIntolerance",
        "verificationStatus",
        "confirmed unconfirmed",
        "refuted",
        "an allergy considered and ruled out",
    )
    add(
        "Immunization",
        "status",
        "completed",
        "not-done",
        "the vaccine was not given",
    )
    return tuple(out)


RULES = _rules()
_INDEX = {(r.resource, r.element, v): r for r in RULES for v in r.values}
ELEMENTS: dict[str, tuple[str, ...]] = {}
for _rule in RULES:
    if _rule.element not in ELEMENTS.setdefault(_rule.resource, ()):
        ELEMENTS[_rule.resource] += (_rule.element,)


def _status_code(value: Any) -> str | None:
    """A code element's value, or a CodeableConcept's first coded value."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1:  # XML cannot say it does not repeat
        value = value[0]
    if isinstance(value, dict):
        codings = value.get("coding")
        if isinstance(codings, dict):
            codings = [codings]
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return str(coding["code"])
    return None


@dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str


def verdict(resource: dict[str, Any]) -> Verdict | None:
    """None when the resource is kept; else why it is not (dropped beats not an event)."""
    rtype = resource.get("resourceType")
    found: list[Rule] = []
    for element in ELEMENTS.get(str(rtype), ()):
        value = resource.get(element)
        code = PRESENT if value is not None and element == "type" else _status_code(value)
        rule = _INDEX.get((str(rtype), element, code or ""))
        if rule is not None and rule.outcome != KEPT:
            found.append(rule)
    if not found:
        return None
    rule = min(found, key=lambda r: r.outcome != DROPPED)
    if rule.values == (PRESENT,):
        return Verdict(rule.outcome, f"{rtype}.{rule.element} is given: {rule.why}")
    code = _status_code(resource.get(rule.element))
    return Verdict(rule.outcome, f"{rtype}.{rule.element} is {code}: {rule.why}")


def rules_table() -> str:
    """The Markdown table in docs/practices.md."""
    lines = ["| resource | element | value | outcome | why |", "|---|---|---|---|---|"]
    for r in RULES:
        values = ", ".join(f"`{v}`" for v in r.values)
        lines.append(f"| {r.resource} | {r.element} | {values} | {r.outcome} | {r.why} |")
    return "\n".join(lines)
