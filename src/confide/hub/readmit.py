"""Adding the rows of records the pseudonymiser linked after their submission.

At ingest, the rows of a patient who could not be linked are quarantined. The pseudonymiser
may link that record later: a later submission brings the person (or their old postcode), or
a reviewer confirms a match. It lists such resolutions with an increasing sequence number; the
hub asks for those after the last one it applied (``resolutions_applied`` in the catalog),
checks the record's rows again from the original submission it kept, and appends them to the
source's snapshot, when that submission is still the source's live one (a newer snapshot was
linked afresh). The rows and the cursor move in one catalog swap, so a crash or a repeat
applies nothing twice. People who have since chosen to share nothing are skipped, and so is
anyone the hub has erased.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from confide.common.submission import CLINICAL_TABLES
from confide.hub import validate

if TYPE_CHECKING:
    from confide.hub.ingest import Hub

CURSOR = "resolutions_applied"
# The columns of the pseudonymiser's answer that ``validate.check`` reads as ``people``.
PEOPLE_COLUMNS = ("ref", "pseudonym", "birth_year", "birth_month", "sex", "area", "status",
                  "reason", "match_weight", "linked_by")  # fmt: skip


def _rows_for(hub: Hub, ods: str, submission_id: str, people: pa.Table) -> dict[str, pa.Table]:
    """The accepted rows of ``people``'s records in the kept submission."""
    kept = hub.folder / "submissions" / submission_id
    refs = people.column("ref")
    tables = {}
    for name in CLINICAL_TABLES:
        table = hub.read_table(kept, name)
        if table.num_rows:
            table = table.filter(pc.is_in(table.column("ref").cast(pa.int32()), refs))
        tables[name] = table
    kind = hub.ops.source_key(ods).kind
    return validate.check(ods, kind, people, tables).tables


def _not_erased(hub: Hub, people: pa.Table) -> pa.Table:
    """Leave out records linked to someone the hub has erased (read under the write lock)."""
    gone = hub.erasures.erased_among(people.column("pseudonym").drop_null().to_pylist())
    if not gone:
        return people
    hit = pc.is_in(people.column("pseudonym"), value_set=pa.array(sorted(gone), pa.string()))
    return people.filter(pc.invert(pc.fill_null(hit, False)))


def readmit(hub: Hub) -> dict[str, Any]:
    """Apply every resolution not yet applied; returns how many records and rows were added."""
    if hub.pseudonymiser.resolutions(int(hub.records.catalog().get(CURSOR, 0))).num_rows == 0:
        return {"records": 0, "rows": 0}
    with hub.records.writing():
        catalog = hub.records.catalog()
        found = hub.pseudonymiser.resolutions(int(catalog.get(CURSOR, 0)))
        if found.num_rows == 0:
            return {"records": 0, "rows": 0}
        live = {entry["submission_id"]: ods for ods, entry in catalog["sources"].items()}
        linked = found.filter(pc.equal(found.column("status"), "linked"))
        additions: dict[str, dict[str, pa.Table]] = {}
        records: dict[str, int] = {}
        for submission_id in sorted(set(linked.column("submission_id").to_pylist())):
            if submission_id not in live:
                continue
            people = linked.filter(pc.equal(linked.column("submission_id"), submission_id))
            ods = live[submission_id]
            people = _not_erased(hub, people)
            additions[ods] = _rows_for(hub, ods, submission_id, people.select(PEOPLE_COLUMNS))
            records[submission_id] = people.num_rows
        last = int(pc.max(found.column("seq")).as_py())

        def update(catalog: dict[str, Any]) -> None:
            catalog[CURSOR] = last
            for submission_id, count in records.items():
                summary = catalog["ingested"][submission_id]
                summary["readmitted"] = int(summary.get("readmitted", 0)) + count

        hub.records.add_rows(additions, update)
    rows = sum(table.num_rows for tables in additions.values() for table in tables.values())
    return {"records": sum(records.values()), "rows": rows}
