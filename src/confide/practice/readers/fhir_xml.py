"""FHIR XML → the dict shape of FHIR JSON, following the R4 XML/JSON rules for what Confide reads.

- A primitive is an element with a ``value`` attribute; its ``id``/extensions go to ``_name``.
- Elements that repeat become lists; so do elements that FHIR defines as repeating (XML cannot
  tell a list of one from a single element), as far as the fields Confide reads need it. The
  resource mapper also accepts a lone object where a list is expected.
- ``boolean``, ``integer`` and ``decimal`` primitives become JSON booleans and numbers; a value
  that does not parse stays text, so the mapper rejects it exactly as it would in JSON.
- A resource inside an element (``contained``, ``entry.resource``) is the element's only child,
  named after its type (capitalised, unlike every FHIR element name).
- The XHTML narrative (``div``), comments and processing instructions are dropped.

Parsing never resolves entities or touches the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from confide.practice.readers.fhir_resources import Context, FhirCollector

FHIR_NS = "http://hl7.org/fhir"
_FHIR = "{" + FHIR_NS + "}"

# Elements FHIR R4 defines as repeating wherever they occur, among those with children
# (complex types). Names that repeat in one place but not another (``identifier``: a Patient's
# repeats, a Reference's does not; likewise ``category``, ``location``, ``bodySite``) are left
# out: the mapper reads those with ``as_list``, which accepts a lone object.
REPEATING = frozenset(
    {
        "extension", "modifierExtension", "coding", "name", "telecom", "address",
        "contact", "communication", "generalPractitioner", "link", "entry", "contained",
        "component", "performer", "note", "reasonCode", "reasonReference",
        "diagnosis", "participant", "hasMember", "derivedFrom", "dosageInstruction", "dosage",
        "doseAndRate", "interpretation", "referenceRange", "basedOn", "partOf",
        "statusHistory", "classHistory", "episodeOfCare", "account", "evidence", "stage",
        "photo", "qualification", "tag", "security", "reaction", "manifestation",
        "protocolApplied", "additionalInstruction", "instantiatesCanonical",
        "team", "referralRequest", "insurance", "supportingInfo",
    }
)  # fmt: skip
# Repeating primitives (elements with a value attribute).
REPEATING_PRIMITIVES = frozenset(
    {"given", "prefix", "suffix", "line", "profile", "dayOfWeek", "when", "timeOfDay", "event",
     "instantiatesUri", "targetDisease"}
)  # fmt: skip
_INTEGER_NAMES = frozenset(
    {"rank", "frequency", "frequencyMax", "count", "countMax", "total", "sequence",
     "numberOfRepeatsAllowed", "offset", "doseNumberPositiveInt", "seriesDosesPositiveInt"}
)  # fmt: skip
_DECIMAL_NAMES = frozenset(
    {"period", "periodMax", "duration", "durationMax", "factor", "lowerLimit", "upperLimit"}
)
# Parents whose ``value`` child is a decimal (Quantity and its profiles).
_QUANTITY_PARENTS = frozenset(
    {"quantity", "low", "high", "numerator", "denominator", "amount", "origin", "dose",
     "expectsPerUnit"}
)  # fmt: skip


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=True,
    )


def _local(tag: Any) -> str | None:
    if not isinstance(tag, str) or not tag.startswith(_FHIR):
        return None
    return tag[len(_FHIR) :]


def _coerce(name: str, parent: str, raw: str) -> Any:
    if name.endswith("Boolean") or name in ("deceasedBoolean", "active", "experimental"):
        return {"true": True, "false": False}.get(raw, raw)
    if name in _INTEGER_NAMES or name.endswith(("Integer", "PositiveInt", "UnsignedInt")):
        try:
            return int(raw)
        except ValueError:
            return raw
    if (
        name in _DECIMAL_NAMES
        or name.endswith("Decimal")
        or (
            name == "value"
            and (
                parent.endswith(("Quantity", "Age", "Duration", "Money"))
                or parent in _QUANTITY_PARENTS
            )
        )
    ):
        try:
            number = float(raw)
        except ValueError:
            return raw
        return int(raw) if raw.lstrip("-").isdigit() else number
    return raw


def resource_to_dict(elem: etree._Element) -> dict[str, Any]:
    """A FHIR XML resource element as the dict FHIR JSON would give."""
    out: dict[str, Any] = {"resourceType": _local(elem.tag)}
    _fill(elem, out)
    return out


def _fill(elem: etree._Element, out: dict[str, Any]) -> None:
    name = _local(elem.tag) or ""
    values: dict[str, list[Any]] = {}
    extras: dict[str, list[Any]] = {}
    primitive_names: set[str] = set()
    for child in elem:
        child_name = _local(child.tag)
        if child_name is None:  # XHTML narrative or foreign content
            continue
        value, extra = _convert(child, child_name, name)
        if "value" in child.attrib:
            primitive_names.add(child_name)
        values.setdefault(child_name, []).append(value)
        extras.setdefault(child_name, []).append(extra)
    for key, items in values.items():
        repeats = key in (REPEATING_PRIMITIVES if key in primitive_names else REPEATING)
        out[key] = items if (repeats or len(items) > 1) else items[0]
        aux = extras[key]
        if any(a is not None for a in aux):
            out["_" + key] = aux if (repeats or len(aux) > 1) else aux[0]


def _convert(elem: etree._Element, name: str, parent: str) -> tuple[Any, dict | None]:
    children = [c for c in elem if _local(c.tag) is not None]
    if len(children) == 1 and (_local(children[0].tag) or "a")[0].isupper():
        return resource_to_dict(children[0]), None
    if "value" in elem.attrib:
        value = _coerce(name, parent, elem.attrib["value"])
        extra: dict[str, Any] = {}
        if "id" in elem.attrib:
            extra["id"] = elem.attrib["id"]
        _fill(elem, extra)
        return value, (extra or None)
    out: dict[str, Any] = {}
    for attr in ("id", "url"):
        if attr in elem.attrib:
            out[attr] = elem.attrib[attr]
    _fill(elem, out)
    return out, None


def read_xml_file(path: Path, collector: FhirCollector) -> None:
    """One ``.xml`` file: a Bundle or a single resource. A file that is not well-formed XML
    becomes one rejection holding the whole file; the other files are still read."""
    raw = path.read_bytes()
    ctx = Context(file=path.name, location="", original=lambda: raw)
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else "?"
        collector.reject(ctx, f"not well-formed XML (near line {line}); is the file complete?")
        return
    rtype = _local(root.tag)
    if rtype is None:
        collector.reject(ctx, "not FHIR XML (the root element is not in the FHIR namespace)")
        return
    doc = resource_to_dict(root)
    if rtype == "Bundle":
        entries = [c for c in root if _local(c.tag) == "entry"]
        collector.add_bundle(doc, ctx, lambda i: etree.tostring(entries[i]))
    else:
        collector.add(doc, ctx)
