"""Output protection: how a project's outputs are protected, decided by its approver.

A researcher never chooses the protection of their own outputs: the approver sets it when
approving (a disclosure-control rule set, or differential privacy with a privacy budget and a
bound on the cells one person may count in), and the TRE reads it from the project's grant on
every query. So no option of a query can ask for exact counts, and once a DP budget is spent
no other mode answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confide.common.enums import parse_enum
from confide.common.errors import InvalidInput

RULE_SET_NAMES = ("acro", "opensafely")  # confide.tre.rules.RULE_SETS; a test keeps them equal
MAX_EPSILON_TOTAL = 20.0
MAX_CONTRIBUTIONS = 20


class ProtectionMode(StrEnum):
    SDC = "sdc"  # statistical disclosure control: thresholds, dominance, cell-key perturbation
    DP = "dp"  # differential privacy: noise, a budget, bounded contributions


@dataclass(frozen=True)
class OutputProtection:
    """The protection of one project's outputs."""

    mode: ProtectionMode = ProtectionMode.SDC
    rules: str = "acro"
    epsilon_total: float | None = None
    contributions: int = 1

    def __post_init__(self) -> None:
        if self.rules not in RULE_SET_NAMES:
            raise InvalidInput(
                f"Unknown rule set {self.rules!r}.", hint=f"Use {', '.join(RULE_SET_NAMES)}."
            )
        if self.mode is ProtectionMode.DP:
            total = self.epsilon_total
            if total is None or not (math.isfinite(total) and 0 < total <= MAX_EPSILON_TOTAL):
                raise InvalidInput(
                    f"A differentially private project needs a privacy budget (epsilon) above 0 "
                    f"and at most {MAX_EPSILON_TOTAL:g}."
                )
            if not 1 <= self.contributions <= MAX_CONTRIBUTIONS:
                raise InvalidInput(
                    f"The cells one person may count in must be 1 to {MAX_CONTRIBUTIONS}."
                )
        elif self.epsilon_total is not None:
            raise InvalidInput("Only differentially private projects have a privacy budget.")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode.value, "rules": self.rules}
        if self.mode is ProtectionMode.DP:
            out["epsilon_total"] = self.epsilon_total
            out["contributions"] = self.contributions
        return out

    def describe(self) -> str:
        if self.mode is ProtectionMode.DP:
            return (
                f"differential privacy: budget epsilon {self.epsilon_total:g}, each person in "
                f"at most {self.contributions} cell(s) of a query"
            )
        return f"disclosure control, rule set {self.rules}"


DEFAULT_PROTECTION = OutputProtection()


def protection_from(data: Mapping[str, Any] | None) -> OutputProtection:
    """The stored (or sent) form back as a protection; none stored means the default."""
    if not data:
        return DEFAULT_PROTECTION
    if not isinstance(data, Mapping):
        raise InvalidInput("The output protection must be an object with a mode.")
    unknown = sorted(set(data) - {"mode", "rules", "epsilon_total", "contributions"})
    if unknown:
        raise InvalidInput(f"Unknown output protection field(s): {', '.join(unknown)}.")
    mode = parse_enum(ProtectionMode, "protection mode", data.get("mode", "sdc"))
    total = data.get("epsilon_total")
    contributions = data.get("contributions", 1)
    if total is not None and (not isinstance(total, int | float) or isinstance(total, bool)):
        raise InvalidInput("The privacy budget (epsilon_total) must be a number.")
    if not isinstance(contributions, int) or isinstance(contributions, bool):
        raise InvalidInput("contributions must be a whole number.")
    return OutputProtection(
        mode=mode,
        rules=str(data.get("rules", "acro")),
        epsilon_total=float(total) if total is not None else None,
        contributions=contributions,
    )
