"""The canonical extract: what every reader (CSV, FHIR JSON/NDJSON/XML) produces.

Arrow tables so a million-patient export flows through without a Python object per row.
Column meanings are in docs/formats.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

PATIENTS = pa.schema(
    [
        ("local_id", pa.string()),
        ("nhs_number", pa.string()),
        ("birth_date", pa.string()),
        ("postcode", pa.string()),
        ("sex", pa.string()),
        ("death_date", pa.date32()),
    ]
)
REGISTRATIONS = pa.schema(
    [
        ("local_id", pa.string()),
        ("practice", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
    ]
)
EVENTS = pa.schema(
    [
        ("local_id", pa.string()),
        ("kind", pa.string()),
        ("system", pa.string()),
        ("code", pa.string()),
        ("date", pa.date32()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        # "<", "<=", ">=" or ">" when the value is a bound ("eGFR >90"), else null
        ("comparator", pa.string()),
        # a coded answer (smoking status, say): its system and code
        ("value_system", pa.string()),
        ("value_code", pa.string()),
    ]
)
MEDICATIONS = pa.schema(
    [
        ("local_id", pa.string()),
        ("system", pa.string()),
        ("code", pa.string()),
        ("date", pa.date32()),
        ("quantity", pa.float64()),
        ("quantity_unit", pa.string()),
    ]
)
EPISODES = pa.schema(
    [
        ("local_id", pa.string()),
        ("episode_id", pa.string()),
        ("admission_date", pa.date32()),
        ("discharge_date", pa.date32()),
        ("admission_method", pa.string()),
        ("diagnoses", pa.list_(pa.string())),
        ("procedures", pa.list_(pa.string())),
    ]
)
EXTRACT_SCHEMAS: dict[str, pa.Schema] = {
    "patients": PATIENTS,
    "registrations": REGISTRATIONS,
    "events": EVENTS,
    "medications": MEDICATIONS,
    "episodes": EPISODES,
}


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in order, missing ones null (older shapes)."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


@dataclass
class Rejection:
    """A piece of input that could not be used, kept with the reason (never with identifiers
    in the reason). ``original`` holds the exact bytes (a CSV line, a resource) so nothing is
    lost; it stays at the practice and never goes to the hub."""

    file: str
    location: str
    reason: str
    original: bytes
    # rejected (cannot be used), dropped (entered in error) or "not an event" (status rules),
    # ignored (a resource type Confide does not read)
    outcome: str = "rejected"
    resource_type: str | None = None


@dataclass
class Extract:
    """One source's export in canonical form."""

    source: str
    kind: str  # "practice" or "trust"
    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    # Where every input went, by resource type (FHIR) or file (CSV): {type: {outcome: n}}
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)

    def table(self, name: str) -> pa.Table:
        """A table by name; an empty one with the right schema when the export had none."""
        found = self.tables.get(name)
        if found is None:
            return EXTRACT_SCHEMAS[name].empty_table()
        return found
