"""Rule sets for statistical disclosure control, in ACRO's vocabulary.

A project's approver picks one rule set (or differential privacy) when approving; a researcher
cannot choose or change it. ACRO, the output-checking tool of the UK's trusted research
environments, is the reference: a *threshold* of people per cell, the *p-ratio* (p% rule) and
the *nk rule* of dominance for value measures. OpenSAFELY's small-number rule (counts of 7 or
fewer redacted, others rounded to the nearest 5) is a preset. Every rule set also applies the
cell-key method (:mod:`confide.tre.cellkey`) against differencing. The table in
docs/researchers.md is generated from :data:`RULE_SETS` by :func:`rules_table`.
"""

from __future__ import annotations

from dataclasses import dataclass

from confide.common.errors import InvalidInput
from confide.tre.cellkey import DEFAULT_COUNTS, CountPerturbation


@dataclass(frozen=True)
class RuleSet:
    """One set of output-checking rules.

    ``threshold``: the fewest people a released cell may have (a row below it is removed
    whole, keys included); ``p_ratio``: the p% rule: a value cell is suppressed when the
    total minus its two largest contributions is less than ``p_ratio`` times the largest;
    ``nk``: (n, k): suppressed when the ``n`` largest contributions exceed ``k`` of the total;
    ``rounding``: counts are rounded to this base after perturbation (None: not rounded);
    ``value_noise``: a value measure's perturbation is at most this fraction of its bounds'
    width; ``zeros_disclosive``: whether an empty cell is suppressed like a small one (ACRO's
    default says no, but a population query can isolate one person, and then "nobody" is a
    fact about them: both presets say yes); ``spread_floor``: the spread rule's least total
    of squared deviations of a cell's values without its furthest person, as a share of the
    bounds' width squared."""

    name: str
    summary: str
    threshold: int
    p_ratio: float
    nk: tuple[int, float]
    rounding: int | None
    value_noise: float
    zeros_disclosive: bool
    spread_floor: float = 0.25
    counts: CountPerturbation = DEFAULT_COUNTS

    @property
    def count_bound(self) -> float:
        """How much one person more or fewer can change a released count, at most: their
        own 1, the perturbation of each cell, and half a rounding step each side."""
        rounding = self.rounding or 0
        return 1 + 2 * self.counts.max + rounding

    def value_bound(self, bound: float, width: float) -> float:
        """The same for a sum whose people are clamped to bounds with this largest absolute
        value and width."""
        return bound + 2 * self.value_noise * width


RULE_SETS: dict[str, RuleSet] = {
    rules.name: rules
    for rules in (
        RuleSet(
            name="acro",
            summary="ACRO's defaults: threshold 10, p-ratio 0.1, nk (2, 0.9); counts perturbed "
            "by the cell-key method, not rounded",
            threshold=10,
            p_ratio=0.1,
            nk=(2, 0.9),
            rounding=None,
            value_noise=1.0,
            zeros_disclosive=True,
        ),
        RuleSet(
            name="opensafely",
            summary="OpenSAFELY's: counts of 7 or fewer redacted, others rounded to the nearest "
            "5; ACRO's dominance rules; counts perturbed by the cell-key method",
            threshold=8,
            p_ratio=0.1,
            nk=(2, 0.9),
            rounding=5,
            value_noise=1.0,
            zeros_disclosive=True,
        ),
    )
}
DEFAULT_RULES = "acro"


def rule_set(name: str) -> RuleSet:
    try:
        return RULE_SETS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown rule set {name!r}", hint=f"Use one of {', '.join(RULE_SETS)}."
        ) from None


def rules_table() -> str:
    """The rule sets as a Markdown table (docs/researchers.md embeds it; a test checks it)."""
    lines = [
        "| rule set | fewest people per cell | p-ratio | nk rule | spread floor "
        "| counts rounded to "
        "| empty cells | count perturbation | value perturbation "
        "| one person changes a count by at most |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rules in RULE_SETS.values():
        top, share = rules.nk
        default = " (default)" if rules.name == DEFAULT_RULES else ""
        lines.append(
            f"| `{rules.name}`{default} | {rules.threshold} "
            f"| {rules.p_ratio:g} | ({top}, {share:g}) | {rules.spread_floor:g} × width² "
            f"| {rules.rounding or 'not rounded'} "
            f"| {'suppressed' if rules.zeros_disclosive else 'shown as 0'} "
            f"| ±{rules.counts.max} (variance {rules.counts.variance:.2g}) "
            f"| ±{rules.value_noise:g} × width of the bounds | {rules.count_bound:g} |"
        )
    return "\n".join(lines)


def perturbation_table(rules: RuleSet) -> str:
    """The published count perturbation table as Markdown (generated, tested)."""
    lines = ["| perturbation | probability | cell keys from | to |", "|---|---|---|---|"]
    for value, probability, first, last in rules.counts.rows():
        lines.append(f"| {value:+d} | {probability:g} | {first} | {last} |")
    return "\n".join(lines)
