"""The ledger's entry schemas (versioned per kind) and the identifier scanner every entry passes.

An entry is canonical JSON (sorted keys, no whitespace, UTF-8) of::

    {"kind": "<kind>", "v": 2, "at": "2025-01-31T09:15:02Z", "body": {...}}

Those exact bytes are the Merkle leaf input, so anyone can rebuild the tree from what the API
serves. ``kind`` says what happened, ``v`` the schema version of that kind, ``at`` when the
ledger recorded it (UTC, whole seconds) and ``body`` the public facts, with exactly the fields
listed in :data:`ENTRY_SCHEMAS` (the version written now, :data:`VERSIONS`) or, for entries written
under an earlier version of their kind, in :data:`PAST_ENTRY_SCHEMAS`. Unknown fields are refused,
so nothing slips in by accident; the scanner :func:`find_identifiers` is a second guard that
refuses NHS numbers, full postcodes and birth dates wherever they hide. People appear only as
*commitments*: a 64-hex-digit digest that the person (and the choices party) can recompute and
recognise, that nobody else can link to them or to any other entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from confide.common import canonical
from confide.common.clock import utcnow
from confide.common.errors import InvalidInput
from confide.common.nhs_number import is_valid as nhs_valid
from confide.common.postcode import normalise as postcode_normalise

SCHEMA_VERSION = 1  # of every kind not listed in VERSIONS
SQL_MAX = 20_000  # characters of query text the log carries; longer texts are withheld


class EntryRejected(InvalidInput):
    """An entry that does not match its schema, or that would put an identifier in the log."""


# --- field types -----------------------------------------------------------------------------

_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,79}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _token(v: Any) -> bool:
    return isinstance(v, str) and bool(_TOKEN.match(v))


def _text(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 500 and v.isprintable()


def _sql(v: Any) -> bool:
    """Query text: printable, line breaks and tabs allowed, at most :data:`SQL_MAX` long."""
    return (
        isinstance(v, str)
        and 0 < len(v) <= SQL_MAX
        and all(c.isprintable() or c in "\n\r\t" for c in v)
    )


def loggable_sql(text: str) -> bool:
    """Whether query text may go in a ``query_run`` entry as it is: the field's rules, and
    nothing in it that looks like an identifier."""
    return _sql(text) and not find_identifiers(text)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 10**6


def _digest(v: Any) -> bool:
    return isinstance(v, str) and bool(_DIGEST.match(v))


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**9


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _date(v: Any) -> bool:
    if not (isinstance(v, str) and _DATE.match(v)):
        return False
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _tokens(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 100 and all(_token(x) for x in v)


def _one_of(*allowed: str) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return v in allowed

    check.__doc__ = "one of " + ", ".join(allowed)
    return check


@dataclass(frozen=True)
class Field:
    check: Callable[[Any], bool]
    kind: str  # shown in errors and in the docs
    required: bool = True


def _f(check: Callable[[Any], bool], kind: str, required: bool = True) -> Field:
    return Field(check, kind, required)


_FORMS = ("aggregate", "dp", "extract")
_ROLLOUT_ACTIONS = (
    "started",
    "waiting_period",
    "area_wave",
    "area_paused",
    "area_resumed",
    "practice_joined",
    "practice_declined",
    "practice_paused",
    "national_paused",
    "national_resumed",
    "notices",
)

# kind → field → Field. Adding or changing a field means a new version of that kind.
ENTRY_SCHEMAS: dict[str, dict[str, Field]] = {
    "submission_ingested": {
        "submission_id": _f(_token, "token"),
        "source": _f(_token, "token (ODS code)"),
        "digest": _f(_digest, "sha256 hex"),
        "records": _f(_count, "count"),
        "quarantined": _f(_count, "count", False),
    },
    "choice_changed": {
        "commitment": _f(_digest, "sha256 hex"),
        "set": _f(_tokens, "list of choice names"),
        "cleared": _f(_tokens, "list of choice names"),
        "channel": _f(_token, "token"),
    },
    "project_applied": {
        "project_id": _f(_token, "token"),
        "organisation": _f(_text, "text"),
        "title": _f(_text, "text"),
        "purpose": _f(_token, "token"),
        "recipient_kind": _f(_token, "token"),
        "legal_basis": _f(_token, "token"),
        "datasets": _f(_tokens, "list of tokens"),
    },
    "project_approved": {
        "project_id": _f(_token, "token"),
        "approved_by": _f(_token, "token (role)"),
        "expires": _f(_date, "date", False),
    },
    "query_run": {
        "project_id": _f(_token, "token"),
        "query_id": _f(_token, "token"),
        "query_digest": _f(_digest, "sha256 hex"),
        "mode": _f(_one_of("sdc", "dp", "rounding"), "sdc | dp (rounding: before schema v3)"),
        "sql": _f(_sql, "query text", False),
    },
    "output_checked": {
        "project_id": _f(_token, "token"),
        "output_id": _f(_token, "token"),
        "outcome": _f(_one_of("passed", "failed"), "passed | failed"),
        "method": _f(_token, "token"),
        "cells_suppressed": _f(_count, "count", False),
        "epsilon": _f(_number, "number", False),
        "delta": _f(_number, "number", False),
    },
    "review_vote": {
        "project_id": _f(_token, "token"),
        "output_id": _f(_token, "token"),
        "vote": _f(_one_of("approve", "reject"), "approve | reject"),
        "order": _f(_count, "count (1 for the first vote cast)"),
        "reason": _f(_text, "text", False),
    },
    "release": {
        "release_id": _f(_token, "token"),
        "project_id": _f(_token, "token"),
        "organisation": _f(_text, "text"),
        "purpose": _f(_token, "token"),
        "recipient_kind": _f(_token, "token"),
        "legal_basis": _f(_token, "token"),
        "data_form": _f(_one_of(*_FORMS), " | ".join(_FORMS)),
        "datasets": _f(_tokens, "list of tokens"),
        "patients": _f(_count, "count"),
        "opt_outs_applied": _f(_flag, "boolean"),
        "opt_outs_reason": _f(_text, "text", False),
        "output_id": _f(_token, "token", False),
        "output_digest": _f(_digest, "sha256 hex", False),
        "date": _f(_date, "date"),
    },
    "refusal": {
        "subject": _f(
            _one_of("project", "query", "output", "release"), "project | query | output | release"
        ),
        "ref": _f(_token, "token"),
        "project_id": _f(_token, "token", False),
        "reason": _f(_text, "text"),
    },
    "erasure": {
        "commitment": _f(_digest, "sha256 hex"),
        "stores": _f(_tokens, "list of tokens"),
    },
    "deletion_notice": {
        "notice_id": _f(_token, "token"),
        "project_id": _f(_token, "token"),
        "organisation": _f(_text, "text"),
        "release_ids": _f(_tokens, "list of tokens"),
        "erasure_index": _f(_count, "count (log index)", False),
    },
    "person_lookup": {
        "what": _f(_one_of("usage_report", "choices_history", "choices"), "what was looked at"),
        "organisation": _f(_text, "text"),
        "operator": _f(_token, "token (the operator's access id)"),
        "reason": _f(_text, "text"),
    },
    "key_rotation": {
        "party": _f(_token, "token"),
        "key_kind": _f(_token, "token"),
        "key_id": _f(_token, "token (fingerprint)"),
        "previous_key_id": _f(_token, "token", False),
    },
    # The roll-out's switches, and notice figures per practice and week (never per person).
    "rollout": {
        "action": _f(_one_of(*_ROLLOUT_ACTIONS), " | ".join(_ROLLOUT_ACTIONS)),
        "subject": _f(_token, "token (national, area or ODS code)"),
        "reason": _f(_text, "text", False),
        "role": _f(_token, "token (role)", False),
        "start_date": _f(_date, "date", False),
        "wave": _f(_count, "count", False),
        "weeks": _f(_count, "count", False),
        "week": _f(_date, "date (Monday)", False),
        "sent": _f(_count, "count", False),
        "delivered": _f(_count, "count", False),
        "returned": _f(_count, "count", False),
        "undeliverable": _f(_count, "count", False),
    },
}
KINDS = tuple(ENTRY_SCHEMAS)
# The version each kind is written at now (SCHEMA_VERSION when not listed).
VERSIONS: dict[str, int] = {"query_run": 2, "output_checked": 2, "erasure": 2}
# Earlier versions of kinds, kept so entries written under them still validate and are shown.
PAST_ENTRY_SCHEMAS: dict[tuple[str, int], dict[str, Field]] = {
    ("query_run", 1): {
        name: ENTRY_SCHEMAS["query_run"][name]
        for name in ("project_id", "query_id", "query_digest")
    },
    ("output_checked", 1): {
        name: field
        for name, field in ENTRY_SCHEMAS["output_checked"].items()
        if name not in ("epsilon", "delta")
    },
    # Version 1 carried the number of rows erased: for one person, their exact row count in
    # the record store, which is a fact about them. Version 2 says only where they were erased.
    ("erasure", 1): {**ENTRY_SCHEMAS["erasure"], "rows": _f(_count, "count", False)},
}


def version_of(kind: str) -> int:
    """The schema version ``kind`` is written at now."""
    return VERSIONS.get(kind, SCHEMA_VERSION)


def schema_for(kind: str, v: int) -> dict[str, Field] | None:
    """The fields of version ``v`` of ``kind`` (None when there is no such version)."""
    if v == version_of(kind):
        return ENTRY_SCHEMAS.get(kind)
    return PAST_ENTRY_SCHEMAS.get((kind, v))


# --- the identifier scanner ------------------------------------------------------------------

# Ten digits (optionally grouped 3-3-4 by spaces or hyphens) not touching other digits.
_NHS_LIKE = re.compile(r"(?<![0-9])([0-9]{3})[ -]?([0-9]{3})[ -]?([0-9]{4})(?![0-9])")
# A full postcode as a token of its own (outward code, optional space, inward code).
_POSTCODE_LIKE = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,2}[0-9][A-Za-z0-9]?) ?([0-9][A-Za-z]{2})(?![A-Za-z0-9])"
)
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{32,}$")
_BIRTH_KEY = re.compile(r"birth|(^|_)dob($|_)|^born", re.IGNORECASE)
_IDENTIFIER_KEYS = re.compile(
    r"nhs|postcode|post_code|pseudonym|patient_id|person_id|given_name|family_name|surname"
    r"|forename|address|^name$",
    re.IGNORECASE,
)


def _scan_text(value: str, where: str) -> list[str]:
    if _HEX_DIGEST.match(value):  # a digest: digits in it are hash output, not a number
        return []
    found = []
    for m in _NHS_LIKE.finditer(value):
        if nhs_valid("".join(m.groups())):
            found.append(f"{where}: looks like an NHS number")
            break
    for m in _POSTCODE_LIKE.finditer(value):
        if postcode_normalise(m.group(0)) is not None:
            found.append(f"{where}: looks like a full postcode")
            break
    return found


def find_identifiers(obj: Any, where: str = "body") -> list[str]:
    """Where ``obj`` seems to hold an identifier; an empty list when it looks clean.

    Looks for: any ten-digit number (also ``943 476 5919``) that passes the NHS modulus 11
    check; any full UK postcode; any field named like a birth date, NHS number, postcode,
    pseudonym or name. Findings name the place and the kind, never the value.
    """
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            place = f"{where}.{key}"
            key_text = str(key)
            if _BIRTH_KEY.search(key_text):
                found.append(f"{place}: a date of birth field")
            elif _IDENTIFIER_KEYS.search(key_text):
                found.append(f"{place}: a field for an identifier")
            found.extend(_scan_text(key_text, f"{where} (a key)"))
            found.extend(find_identifiers(value, place))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            found.extend(find_identifiers(value, f"{where}[{i}]"))
    elif isinstance(obj, str):
        found.extend(_scan_text(obj, where))
    elif isinstance(obj, int) and not isinstance(obj, bool):
        found.extend(_scan_text(str(obj), where))
    return found


# --- encoding --------------------------------------------------------------------------------


def validate(kind: str, body: dict[str, Any], v: int | None = None) -> None:
    """Raise :class:`EntryRejected` unless ``body`` is a clean, well-formed ``kind`` entry (of
    version ``v``; the current version when not given)."""
    schema = ENTRY_SCHEMAS.get(kind) if v is None else schema_for(kind, v)
    if schema is None and v is not None and kind in ENTRY_SCHEMAS:
        raise EntryRejected(f"There is no version {v} of the {kind} entry.")
    if schema is None:
        raise EntryRejected(
            f"'{kind}' is not a kind of ledger entry.", hint="Use one of: " + ", ".join(KINDS)
        )
    if not isinstance(body, dict):
        raise EntryRejected(f"A {kind} entry's body must be an object of named fields.")
    problems = find_identifiers(body)
    if problems:
        raise EntryRejected(
            f"The {kind} entry was refused because it would put an identifier in the public "
            "log (" + "; ".join(problems) + ").",
            hint="Log only public facts; identify people by their commitment, never directly.",
        )
    unknown = sorted(set(body) - set(schema))
    if unknown:
        raise EntryRejected(
            f"A {kind} entry has no field(s) {', '.join(unknown)}.",
            hint="Fields allowed: " + ", ".join(schema),
        )
    for name, field in schema.items():
        if name not in body:
            if field.required:
                raise EntryRejected(f"A {kind} entry needs the field '{name}' ({field.kind}).")
            continue
        if not field.check(body[name]):
            raise EntryRejected(f"In a {kind} entry, '{name}' must be a {field.kind}.")


def timestamp(at: datetime | None = None) -> str:
    """The ``at`` of an entry: UTC, whole seconds, ISO 8601 with ``Z``."""
    at = (at or utcnow()).astimezone(UTC).replace(microsecond=0)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(kind: str, body: dict[str, Any], at: str) -> bytes:
    """The canonical leaf input bytes of an entry already passed by :func:`validate`."""
    return canonical.dumps({"kind": kind, "v": version_of(kind), "at": at, "body": body})


def encode(kind: str, body: dict[str, Any], at: str) -> bytes:
    """Validate and return the canonical leaf input bytes of one entry."""
    validate(kind, body)
    return envelope(kind, body, at)


@dataclass(frozen=True)
class Entry:
    """A decoded entry, as an auditor would read it."""

    index: int
    kind: str
    v: int
    at: str
    body: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "v": self.v,
            "at": self.at,
            "body": self.body,
        }


def decode(index: int, leaf_input: bytes) -> Entry:
    """Read the leaf input of entry ``index`` back into an :class:`Entry`."""
    try:
        doc = canonical.loads(leaf_input)
        return Entry(index, doc["kind"], doc["v"], doc["at"], doc["body"])
    except (ValueError, KeyError, TypeError):
        raise EntryRejected(f"Entry {index} is not a ledger entry.") from None
