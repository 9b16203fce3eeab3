"""The true person behind every patient record of a synthetic area, kept beside the exports.

``truth.parquet`` sits in the area's folder, outside every source's export, and nothing in the
pipeline reads it: it is the answer key that tests and benchmarks measure linkage against.
One row per patient record of every source:

| column | meaning |
|---|---|
| ``source`` | the ODS code of the practice or trust whose export holds the record |
| ``kind`` | ``practice`` or ``trust`` |
| ``patient_id`` | the record's id in that export (``patient_id`` in CSV, the Patient id in FHIR) |
| ``person`` | the person (stable across sources): the same number is the same person |
| ``nhs_number`` | the person's true NHS number (the record's own may be missing or mistyped) |
| ``registered`` | whether the person is registered at a practice in the area (outsiders are not) |

The hospital records carry the errors of ``hospital.IdentifierErrors``; a hospital record of an
outsider has no GP record to link to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from confide.synth.area import Organisation

FILE = "truth.parquet"


class Truth:
    """Collects each source's records while the exports are written."""

    def __init__(self, nhs: np.ndarray, registered: int) -> None:
        self._nhs = nhs
        self._registered = registered
        self._parts: list[pa.Table] = []

    def add(self, org: Organisation, patient_ids: pa.Array, persons: np.ndarray) -> None:
        persons = np.asarray(persons, dtype=np.int64)
        self._parts.append(
            pa.table(
                {
                    "source": pa.array([org.ods] * len(persons), pa.string()),
                    "kind": pa.array([org.kind] * len(persons), pa.string()),
                    "patient_id": patient_ids.cast(pa.string()),
                    "person": pa.array(persons, pa.int64()),
                    "nhs_number": pa.array(self._nhs[persons].astype(str), pa.string()),
                    "registered": pa.array(persons < self._registered, pa.bool_()),
                }
            )
        )

    def write(self, folder: Path) -> None:
        pq.write_table(pa.concat_tables(self._parts), Path(folder) / FILE, compression="zstd")


def read(folder: Path) -> pa.Table:
    """The answer key of the area in ``folder`` (for tests and benchmarks only)."""
    return pq.read_table(Path(folder) / FILE)
