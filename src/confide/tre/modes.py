"""The two ways a project's outputs are protected: the one step of the query pipeline that
depends on the protection its approver set.

The query service (:mod:`confide.tre.service`) runs the same pipeline for every query and asks
the project's mode to protect the cells the engine returned:

* :class:`DisclosureControl`: suppression and rounding or perturbation
  (:mod:`confide.tre.disclosure`), then the differencing check against the organisation's
  earlier releases (:mod:`confide.tre.differencing`), which holds the output for two checkers
  when a released cell would differ from another by fewer people than the threshold;
* :class:`DifferentialPrivacy`: the query's epsilon is spent from the project's budget, then
  noise is added (:mod:`confide.tre.dp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from confide.access.model import ProjectGrant
from confide.tre.aggregation import AggregationPlan
from confide.tre.budget import BudgetExhausted, PrivacyBudgets
from confide.tre.differencing import CellSketch, SketchStore, find_overlaps, new_sketches
from confide.tre.disclosure import protect
from confide.tre.dp import DpOptions, release_dp
from confide.tre.model import QueryDefinition
from confide.tre.outcomes import OutputCheck, Privacy
from confide.tre.person_level import PersonLevelQuery
from confide.tre.rules import RuleSet
from confide.tre.sketching import released_sketches
from confide.tre.store import QueryRecord

OVERLAPS_KEPT = 50  # overlaps listed in a held output's result for its checkers
OVERLAPS_GIVEN = 5  # overlaps named in the reason the researcher is given


@dataclass(frozen=True)
class Aggregated:
    """One query's aggregation, ready to protect: what was asked and what the engine gave."""

    record: QueryRecord
    grant: ProjectGrant
    definition: QueryDefinition
    population: PersonLevelQuery
    plan: AggregationPlan
    cells: list[dict[str, Any]]
    sketch_rows: list[dict[str, Any]] | None


@dataclass(frozen=True)
class Sketches:
    """The sketches of an output's released cells, and the organisation's earlier ones."""

    released: list[CellSketch]
    earlier: list[CellSketch]

    def new(self) -> list[CellSketch]:
        """The released sketches not kept already (a cell asked again is kept once)."""
        return new_sketches(self.released, self.earlier)


@dataclass(frozen=True)
class Protected:
    """A mode's protected output: the result, how it was checked and, when it must wait for
    two checkers, why (``held``)."""

    result: dict[str, Any]
    check: OutputCheck
    held: str | None = None
    sketches: Sketches | None = None


class OutputMode(Protocol):
    """How one project's outputs are protected."""

    @property
    def output_form(self) -> str:
        """The form whose exclusions apply (a key of ``exclusions.OUTPUT_FORMS``)."""
        ...

    @property
    def data_form(self) -> str:
        """The ``data_form`` of its releases in the ledger."""
        ...

    @property
    def sketching(self) -> bool:
        """Whether the engine returns the people of each cell as sketches."""
        ...

    @property
    def epsilon(self) -> float | None:
        """The privacy budget a query spends (None: the project has no budget)."""
        ...

    @property
    def contributions(self) -> int | None:
        """The bound on cells per person the aggregation enforces (None: no bound)."""
        ...

    def protect(self, aggregated: Aggregated) -> Protected: ...


@dataclass(frozen=True)
class DisclosureControl:
    """Statistical disclosure control with the project's rules, and the differencing check."""

    rules: RuleSet
    sketch_store: SketchStore
    output_form: str = "rounding"
    data_form: str = "aggregate"
    sketching: bool = True
    epsilon: float | None = None
    contributions: int | None = None

    def protect(self, aggregated: Aggregated) -> Protected:
        rules = self.rules
        output = protect(aggregated.plan, aggregated.cells, rules)
        check = OutputCheck(f"sdc_{rules.name}", output.suppressed)
        released = released_sketches(
            aggregated.definition,
            aggregated.population,
            aggregated.plan,
            output,
            aggregated.sketch_rows,
        )
        earlier = self.sketch_store.load(aggregated.record.organisation_id)
        sketches = Sketches(released, earlier)
        overlaps = find_overlaps(released, earlier, rules.threshold)
        result = output.as_dict()
        if not overlaps:
            return Protected(result, check, sketches=sketches)
        result["overlaps"] = [overlap.describe() for overlap in overlaps[:OVERLAPS_KEPT]]
        held = (
            "held for review: cells differ from other released cells by fewer than "
            f"{rules.threshold} people (a differencing risk): "
            + "; ".join(overlap.describe() for overlap in overlaps[:OVERLAPS_GIVEN])
        )
        return Protected(result, check, held=held, sketches=sketches)


@dataclass(frozen=True)
class DifferentialPrivacy:
    """Differential privacy: each query spends its epsilon from the project's budget."""

    options: DpOptions
    budgets: PrivacyBudgets
    output_form: str = "dp"
    data_form: str = "dp"
    sketching: bool = False

    @property
    def epsilon(self) -> float:
        return self.options.epsilon

    @property
    def contributions(self) -> int:
        return self.options.contributions

    def check_budget(self, grant: ProjectGrant) -> None:
        """Refuse before anything runs when the budget left is less than the query needs."""
        total = grant.protection.epsilon_total
        assert total is not None
        left = self.budgets.status(grant.project_id, total).left
        if self.epsilon > left + 1e-9:
            raise BudgetExhausted(
                f"The project's privacy budget is exhausted: this query needs epsilon "
                f"{self.epsilon:g} but only {left:g} is left. No other mode answers for a "
                "differentially private project."
            )

    def protect(self, aggregated: Aggregated) -> Protected:
        grant, options = aggregated.grant, self.options
        assert grant.protection.epsilon_total is not None
        self.budgets.spend(
            grant.project_id,
            aggregated.record.id,
            options.epsilon,
            options.delta,
            total=grant.protection.epsilon_total,
        )
        output = release_dp(aggregated.plan, aggregated.cells, options)
        privacy = Privacy(float(output.epsilon), float(output.delta))
        return Protected(output.as_dict(), OutputCheck("dp_laplace", 0, privacy))
