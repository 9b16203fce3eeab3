"""Each project's privacy budget: a total epsilon, what has been spent, and what is left.

Spending is one compare-and-set statement (``spent + e <= total``), so concurrent DP queries of
one project can never overspend, on SQLite or PostgreSQL. Every spend is kept per query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from confide.common.clock import utcnow
from confide.common.errors import InvalidInput
from confide.tre.store import TreStore, budgets, spends

DEFAULT_TOTAL_EPSILON = 3.0
_SLACK = 1e-9  # floating-point slack so a budget can be spent exactly to zero


class BudgetExhausted(InvalidInput):
    """The query would spend more privacy budget than the project has left."""


@dataclass(frozen=True)
class Budget:
    project_id: str
    total: float
    spent: float
    delta_spent: float

    @property
    def left(self) -> float:
        return max(0.0, self.total - self.spent)

    def as_dict(self) -> dict[str, float]:
        return {
            "epsilon_total": round(self.total, 6),
            "epsilon_spent": round(self.spent, 6),
            "epsilon_left": round(self.left, 6),
            "delta_spent": self.delta_spent,
        }


class PrivacyBudgets:
    """Budgets over the TRE store; a project's budget is created at ``default_total``."""

    def __init__(self, store: TreStore, default_total: float = DEFAULT_TOTAL_EPSILON) -> None:
        if default_total <= 0:
            raise ValueError("a privacy budget must be positive")
        self.store = store
        self.default_total = default_total

    def _ensure(self, project_id: str, total: float | None = None) -> None:
        """Make the project's budget row; ``total`` (the approver's figure) replaces the
        stored total when it differs."""
        with self.store.engine.connect() as conn:
            found = conn.execute(
                select(budgets.c.total).where(budgets.c.project_id == project_id)
            ).first()
        if found is not None:
            if total is not None and abs(float(found.total) - total) > 1e-12:
                with self.store.engine.begin() as conn:
                    conn.execute(
                        update(budgets)
                        .where(budgets.c.project_id == project_id)
                        .values(total=total)
                    )
            return
        try:
            with self.store.engine.begin() as conn:
                conn.execute(
                    insert(budgets).values(
                        project_id=project_id,
                        total=self.default_total if total is None else total,
                        spent=0.0,
                        delta_spent=0.0,
                    )
                )
        except IntegrityError:
            pass  # another query created it first

    def status(self, project_id: str, total: float | None = None) -> Budget:
        """The project's budget (made at ``total``, or the default, on first use)."""
        self._ensure(project_id, total)
        with self.store.engine.connect() as conn:
            row = conn.execute(select(budgets).where(budgets.c.project_id == project_id)).one()
        return Budget(row.project_id, row.total, row.spent, row.delta_spent)

    def set_total(self, project_id: str, total: float) -> Budget:
        """Set a project's total epsilon (an operator's decision, recorded by the caller)."""
        if not total > 0:
            raise InvalidInput("A privacy budget must be a positive epsilon.")
        self._ensure(project_id)
        with self.store.engine.begin() as conn:
            conn.execute(
                update(budgets).where(budgets.c.project_id == project_id).values(total=total)
            )
        return self.status(project_id)

    def left(self, project_id: str) -> float | None:
        """What is left of a project's budget; None for a project that has none."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(budgets).where(budgets.c.project_id == project_id)).first()
        return None if row is None else max(0.0, row.total - row.spent)

    def spend(
        self,
        project_id: str,
        query_id: str,
        epsilon: float,
        delta: float,
        *,
        total: float | None = None,
    ) -> Budget:
        """Spend ``epsilon`` (and record ``delta``) for one query, or refuse if too little is
        left; the spend and the per-query record commit together."""
        if not epsilon > 0:
            raise InvalidInput("A differentially private query must spend a positive epsilon.")
        self._ensure(project_id, total)
        with self.store.engine.begin() as conn:
            done = conn.execute(
                update(budgets)
                .where(
                    budgets.c.project_id == project_id,
                    budgets.c.spent + epsilon <= budgets.c.total + _SLACK,
                )
                .values(
                    spent=budgets.c.spent + epsilon,
                    delta_spent=budgets.c.delta_spent + delta,
                )
            )
            if done.rowcount != 1:
                left = self._left(conn, project_id)
                raise BudgetExhausted(
                    f"The project's privacy budget is exhausted: this query needs epsilon "
                    f"{epsilon:g} but only {left:g} is left.",
                    hint="No other mode answers for this project. Use a smaller --epsilon, or "
                    "ask the data access committee to review the project's budget.",
                )
            conn.execute(
                insert(spends).values(
                    query_id=query_id,
                    project_id=project_id,
                    epsilon=epsilon,
                    delta=delta,
                    at=utcnow(),
                )
            )
        return self.status(project_id)

    @staticmethod
    def _left(conn: Connection, project_id: str) -> float:
        row = conn.execute(select(budgets).where(budgets.c.project_id == project_id)).one()
        return max(0.0, row.total - row.spent)
