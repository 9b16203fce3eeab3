"""The practice agent's one job: an export folder in, a signed submission out.

read → type 1 → minimise → seal → sign. Rejected input stays at the practice with its reason
and original bytes (``<home>/practice/<ODS>/rejected/``); none of it goes to the hub.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from confide.common.clock import utcnow
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.practice import keys
from confide.practice.minimise import minimise
from confide.practice.model import Extract, Rejection
from confide.practice.readers import read_export
from confide.practice.type1 import type1_states
from confide.practice.writer import write_submission
from confide.rollout.at_practice import admit


@dataclass
class ExtractResult:
    submission_id: str
    path: Path
    source: str
    kind: str
    counts: dict[str, int]
    rejected: int
    rejected_file: Path | None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "path": str(self.path),
            "source": self.source,
            "kind": self.kind,
            **self.counts,
            "rejected": self.rejected,
            "rejected_file": str(self.rejected_file) if self.rejected_file else None,
            "seconds": self.seconds,
        }


def _keep_rejections(home: Home, ods: str, submission_id: str, rows: list[Rejection]) -> Path:
    folder = home.party("practice") / ods / "rejected"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{submission_id}.ndjson"
    with path.open("wb") as fh:
        for row in rows:
            fh.write(
                orjson.dumps(
                    {
                        "file": row.file,
                        "location": row.location,
                        "reason": row.reason,
                        "outcome": row.outcome,
                        "resource_type": row.resource_type,
                        "original_base64": base64.b64encode(row.original).decode(),
                    }
                )
                + b"\n"
            )
    return path


def _refuse_unreadable(home: Home, ods: str, data: Extract) -> None:
    """An export from which no patient could be read is refused, never submitted: its
    submission would replace the source's whole record at the hub with nothing. What could not
    be read is kept, with reasons, as for any other extract."""
    if data.table("patients").num_rows > 0:
        return
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    kept = _keep_rejections(home, ods, f"refused-{stamp}", data.rejected)
    unusable = len(data.rejected)
    why = f" ({unusable:,} pieces of it could not be used; reasons in {kept.name})"
    raise InvalidInput(
        f"No patient could be read from this export, so nothing was submitted{why}.",
        hint="Check that the folder holds the clinical system's FHIR or CSV export, complete "
        "and undamaged; then run the extract again.",
    )


def extract(
    export: Path,
    home: Home,
    pseudonymiser_key: bytes,
    *,
    source: str | None = None,
    kind: str | None = None,
    out: Path | None = None,
    today: date | None = None,
) -> ExtractResult:
    """Turn one source's export into a submission sealed to ``pseudonymiser_key``.
    ``today`` is the day the roll-out's waiting period is judged on (default: today)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = read_export(Path(export), source=source, kind=kind)
    ods = keys.check_ods(data.source)
    timings["read"] = time.perf_counter() - t0
    _refuse_unreadable(home, ods, data)

    t1 = time.perf_counter()
    events = data.table("events")
    states = type1_states(events)
    result = minimise(data, states)
    result, held = admit(home, ods, result, today)  # the roll-out: gate and waiting period
    timings["minimise"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    counts = {
        "patients": result.identities.num_rows - result.type1_excluded,
        "type1_excluded": result.type1_excluded,
        "type1_withdrawn": result.type1_withdrawn,
        **{name: table.num_rows for name, table in result.tables.items()},
        # Where every input went: per resource type (FHIR) or file (CSV) as read, then per
        # table at minimisation (docs/practices.md, "Every input accounted for").
        "by_resource": data.accounts,
        "by_table": result.accounts,
        **held,
    }
    submission_id, path = write_submission(
        out or home.party("practice") / ods / "outbox",
        ods=ods,
        kind=data.kind,
        identities=result.identities,
        tables=result.tables,
        counts=counts,
        pseudonymiser_key=pseudonymiser_key,
        signing_key=keys.signing_key(home, ods),
    )
    timings["seal_and_sign"] = time.perf_counter() - t2

    rejections = [*data.rejected, *result.rejected]
    rejected_file = _keep_rejections(home, ods, submission_id, rejections) if rejections else None
    return ExtractResult(
        submission_id=submission_id,
        path=path,
        source=ods,
        kind=data.kind,
        counts=counts,
        rejected=len(rejections),
        rejected_file=rejected_file,
        seconds={k: round(v, 3) for k, v in timings.items()},
    )
