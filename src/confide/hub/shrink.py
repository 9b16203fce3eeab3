"""The guard against a bad export wiping a source: a submission replaces the source's snapshot,
so one that would remove more than a set share of its patients or rows is refused unless an
operator confirms it.

A damaged export (files that are not FHIR or CSV, a half-written folder) usually reads as very
few patients; without this guard its ingest would replace the practice's whole record with
almost nothing. Real shrinkage (a practice merger, a list clean-up) is possible, so an operator
can confirm it explicitly; the refusal and the confirmation are both recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confide.common import settings
from confide.common.errors import InvalidInput, SubmissionRejected

DEFAULT_MAX_SHRINK = 0.20
SHRINK_ENV = "CONFIDE_HUB_MAX_SHRINK"
# The tables whose rows are compared; the patients table is also compared on its own.
COMPARED = ("patients", "registrations", "events", "medications", "hospital_episodes", "deaths")

log = logging.getLogger("confide.hub.shrink")


@dataclass(frozen=True)
class Shrink:
    """How much of a source's current snapshot a submission would remove."""

    patients_before: int
    patients_after: int
    rows_before: int
    rows_after: int

    def share(self, before: int, after: int) -> float:
        return 0.0 if before <= 0 or after >= before else (before - after) / before

    @property
    def patients_share(self) -> float:
        return self.share(self.patients_before, self.patients_after)

    @property
    def rows_share(self) -> float:
        return self.share(self.rows_before, self.rows_after)

    def as_dict(self) -> dict[str, Any]:
        return {
            "patients_before": self.patients_before,
            "patients_after": self.patients_after,
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
        }


def max_shrink_from_env() -> float:
    """The share set in ``CONFIDE_HUB_MAX_SHRINK`` (0 to 1), else 20%."""
    raw = (settings.value(SHRINK_ENV) or "").strip()
    if not raw:
        return DEFAULT_MAX_SHRINK
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    return check_share(value)


def check_share(value: float) -> float:
    """``value`` when it is a share (0 to 1); InvalidInput otherwise."""
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(
            "The largest share of a source's record one submission may remove must be between "
            "0 and 1 (for example 0.2 for 20%)."
        )
    return value


def measure(current: dict[str, Any] | None, counts: dict[str, int]) -> Shrink | None:
    """Compare the live snapshot's summary with the new counts (None when there is none)."""
    if not current:
        return None
    return Shrink(
        patients_before=int(current.get("patients", 0)),
        patients_after=int(counts.get("patients", 0)),
        rows_before=sum(int(current.get(t, 0)) for t in COMPARED),
        rows_after=sum(int(counts.get(t, 0)) for t in COMPARED),
    )


def guard(
    ods: str, submission_id: str, shrink: Shrink | None, max_share: float, confirmed: bool
) -> dict[str, Any] | None:
    """Refuse a submission that removes more than ``max_share``; returns the confirmation to
    record when an operator let one through, else None."""
    if shrink is None:
        return None
    worst = max(shrink.patients_share, shrink.rows_share)
    if worst <= max_share:
        return None
    what = (
        f"{shrink.patients_before:,} patients to {shrink.patients_after:,} and "
        f"{shrink.rows_before:,} rows to {shrink.rows_after:,}"
    )
    if not confirmed:
        log.warning(
            "refused submission %s from %s: it would remove %.0f%% of the source's record",
            submission_id,
            ods,
            worst * 100,
        )
        raise SubmissionRejected(
            f"This submission from {ods} would shrink its record at the hub from {what} "
            f"(removing {worst:.0%}, more than the {max_share:.0%} allowed); the current "
            "record is kept unchanged.",
            hint="Check the practice's export (a damaged or partial export reads as few "
            "patients). If the shrinkage is real, an operator can confirm it with "
            "`confide hub ingest --confirm-shrink`.",
        )
    log.warning(
        "operator confirmed submission %s from %s removing %.0f%% of the source's record",
        submission_id,
        ods,
        worst * 100,
    )
    return {**shrink.as_dict(), "share_removed": round(worst, 4), "max_share": max_share}
