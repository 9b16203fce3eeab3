"""Small canonical extracts built in code, for tests of the pipeline behind the readers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from confide.common.nhs_number import generate_test_numbers
from confide.practice.model import EXTRACT_SCHEMAS, Extract

DISSENT = "827241000000103"
WITHDRAWN = "827261000000102"


def small_extract(
    *,
    source: str = "B86001",
    kind: str = "practice",
    patients: int = 40,
    seed: int = 1,
    dissent: tuple[int, ...] = (),
    withdrawn: tuple[int, ...] = (),
    bad_numbers: tuple[int, ...] = (),
) -> Extract:
    """``patients`` people with two events each; indices in ``dissent`` carry a type 1 code,
    those in ``withdrawn`` a dissent then a later withdrawal; ``bad_numbers`` get a mistyped
    NHS number."""
    rng = np.random.default_rng(seed)
    numbers = generate_test_numbers(patients, rng).tolist()
    for i in bad_numbers:
        digits = list(numbers[i])
        digits[3] = str((int(digits[3]) + 1) % 10)
        numbers[i] = "".join(digits)
    ids = [f"p{i}" for i in range(patients)]
    people = pa.table(
        {
            "local_id": ids,
            "nhs_number": numbers,
            "birth_date": [
                f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(patients)
            ],
            "postcode": [f"LS{1 + i % 9} {i % 10}AB" for i in range(patients)],
            "sex": ["female" if i % 2 else "male" for i in range(patients)],
            "death_date": [date(2024, 1, 1) if i == 0 else None for i in range(patients)],
        },
        schema=EXTRACT_SCHEMAS["patients"],
    )
    ev_rows = []
    for i, pid in enumerate(ids):
        ev_rows.append((pid, "condition", "snomed", "44054006", date(2020, 1, 1), None, None))
        ev_rows.append(
            (pid, "observation", "snomed", "1049301000000100", date(2021, 1, 1), 48.0, "mmol/mol")
        )
        if i in dissent or i in withdrawn:
            ev_rows.append(
                (pid, "observation", "snomed", "827241000000103", date(2019, 5, 1), None, None)
            )
        if i in withdrawn:
            ev_rows.append(
                (pid, "observation", "snomed", "827261000000102", date(2022, 5, 1), None, None)
            )
    events = pa.Table.from_pylist(
        [dict(zip(EXTRACT_SCHEMAS["events"].names[:7], r, strict=True)) for r in ev_rows],
        schema=EXTRACT_SCHEMAS["events"],
    )
    regs = pa.table(
        {
            "local_id": ids,
            "practice": [source if kind == "practice" else "B86001"] * patients,
            "start_date": [date(2010, 1, 1)] * patients,
            "end_date": [None] * patients,
        },
        schema=EXTRACT_SCHEMAS["registrations"],
    )
    meds = pa.table(
        {
            "local_id": ids,
            "system": ["dmd"] * patients,
            "code": ["39720311000001101"] * patients,
            "date": [date(2022, 3, 1)] * patients,
            "quantity": [56.0] * patients,
            "quantity_unit": ["tablet"] * patients,
        },
        schema=EXTRACT_SCHEMAS["medications"],
    )
    return Extract(
        source=source,
        kind=kind,
        tables={"patients": people, "events": events, "registrations": regs, "medications": meds},
    )
