"""Synthetic people and hospital records with their true person, for linkage tests.

Everything comes from the project's generator (``build_area``): the area's people as their GP
practices record them, and the trusts' copies with identifier errors. Helpers turn them into
person-record files (for ``confide link``) or sealed identity batches (for the pseudonymiser),
always keeping the true NHS number beside each record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from confide.common.sealing import IDENTITY_SCHEMA, seal_table
from confide.synth.generate import build_area
from confide.synth.hospital import IdentifierErrors


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days).astype("datetime64[D]")).cast(pa.string())


@dataclass
class Area:
    """``people``: one record per registered person (``patient_id`` = true NHS number).
    ``hospital``: the trusts' records (``patient_id`` = ``h<i>``), with ``truth`` the true
    NHS number of each (outsiders included: they have no GP record)."""

    people: pa.Table
    hospital: pa.Table
    truth: list[str]
    registered: set[str]


def make_area(patients: int, seed: int, errors: IdentifierErrors | None = None) -> Area:
    data = build_area(patients, seed, trusts=2, errors=errors)
    pop, f = data.pop, data.people.fields
    nhs = pop.nhs.astype(str)
    people = pa.table(
        {
            "patient_id": nhs,
            "nhs_number": nhs,
            "birth_date": _dates(pop.dob),
            "sex": np.where(pop.female, "female", "male"),
            "postcode": pop.postcode.astype(str),
        }
    )
    person = np.concatenate([t.person for t in data.trust_data])
    recorded = np.concatenate([t.nhs for t in data.trust_data]).astype(str)
    hospital = pa.table(
        {
            "patient_id": [f"h{i}" for i in range(len(person))],
            "nhs_number": pa.array([n or None for n in recorded], pa.string()),
            "birth_date": _dates(np.concatenate([t.dob for t in data.trust_data])),
            "sex": np.where(f["female"][person], "female", "male"),
            "postcode": np.concatenate([t.postcode for t in data.trust_data]).astype(str),
        }
    )
    truth = f["nhs"][person].astype(str).tolist()
    return Area(people, hospital, truth, set(nhs.tolist()))


def identities(records: pa.Table, type1: list[str | None] | None = None) -> pa.Table:
    """Person records as the identity rows a practice seals (``ref`` = row number)."""
    n = records.num_rows
    return pa.table(
        {
            "ref": pa.array(range(n), pa.int32()),
            "nhs_number": records.column("nhs_number"),
            "birth_date": records.column("birth_date"),
            "postcode": records.column("postcode"),
            "sex": records.column("sex"),
            "type1": pa.array(type1 or [None] * n, pa.string()),
            "type1_date": pa.nulls(n, pa.date32()),
        },
        schema=IDENTITY_SCHEMA,
    )


def sealed(records: pa.Table, public_key: bytes) -> list[bytes]:
    return [seal_table(identities(records), public_key)]


def with_values(table: pa.Table, row: int, **values: str | None) -> pa.Table:
    """A one-row table: ``table``'s row ``row`` with some values replaced."""
    one = table.slice(row, 1).to_pylist()[0]
    one.update(values)
    return pa.Table.from_pylist([one], schema=table.schema)


def unsure_variants(row: dict) -> list[dict]:
    """Copies of a person's record with errors that leave the model between sure and unsure,
    of several kinds (so that some land in the review band whatever the trained weights).
    ``row`` needs a birth date whose day is 12 or less and differs from its month."""
    number = row["nhs_number"]
    mistyped = number[:5] + str((int(number[5]) + 3) % 10) + number[6:]
    year, month, day = row["birth_date"].split("-")
    typo = f"{year}-{month}-{int(day) + 1 if int(day) < 9 else int(day) - 1:02d}"
    district = row["postcode"].split(" ")[0]
    return [
        {**row, "nhs_number": mistyped, "sex": None, "postcode": "YO1 7HH"},
        {**row, "nhs_number": None, "birth_date": f"{year}-{day}-{month}"},
        {**row, "nhs_number": None, "birth_date": typo},
        {**row, "nhs_number": mistyped, "postcode": f"{district} 9ZZ"},
    ]


def swappable(birth_date: str) -> bool:
    return int(birth_date[8:]) <= 12 and birth_date[5:7] != birth_date[8:]
