"""The accounting table an extract prints: where every input resource and row went.

Every resource read ends in exactly one place: kept (in the submission) or in the practice's
rejected list with its outcome and reason. The same counts travel in the signed manifest.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from confide.cli.output import console


def accounts_table(title: str, accounts: dict[str, dict[str, int]]) -> Table:
    """One row per resource type (or table), one column per outcome, and the total read."""
    outcomes = sorted({o for by in accounts.values() for o in by})
    table = Table(title=title, title_justify="left")
    table.add_column("input")
    table.add_column("read", justify="right")
    for outcome in outcomes:
        table.add_column(outcome, justify="right")
    for name in sorted(accounts):
        by = accounts[name]
        table.add_row(
            name, f"{sum(by.values()):,}", *(f"{by[o]:,}" if o in by else "" for o in outcomes)
        )
    return table


def print_accounts(summary: dict[str, Any]) -> None:
    """Print the accounting an extract or ingest reports (``by_resource``: as read at the
    practice; ``by_table``: rows at minimisation; ``at_hub``: rows accepted or quarantined)."""
    titles = {
        "by_resource": "Resources read at the practice",
        "by_table": "Rows at the practice",
        "at_hub": "Rows at the hub",
    }
    for key, title in titles.items():
        if summary.get(key):
            console.print(accounts_table(title, summary[key]))
