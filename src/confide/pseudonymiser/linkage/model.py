"""The linkage model: what is compared, how candidate pairs are found, and where the lines are.

A Fellegi-Sunter model: each comparison puts a pair of records in one level (exact, close,
different, missing); each level has an m probability (how often true matches fall in it) and a
u probability (how often different people do). The pair's match weight is the sum of
log2(m/u) over comparisons plus the prior log-odds; its match probability follows from it.

Thresholds (on the probability that the record belongs to the candidate, see ``scoring``):

- ``LINK_PROBABILITY`` (0.999): linked. Each accepted link is wrong with probability at most
  0.1% by the model, so the estimated false-match rate of probabilistic links is at most 0.1%;
  the rate actually estimated for a source is the mean of ``1 - probability`` over its links.
- ``REVIEW_PROBABILITY`` (0.5) up to the link threshold: the clerical review queue.
- Below: pending, with the reason.
"""

from __future__ import annotations

from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import ColumnExpression, SettingsCreator, block_on

from confide.pseudonymiser.linkage.records import ADDRESS_COLUMNS, NAME_COLUMNS

LINK_PROBABILITY = 0.999
REVIEW_PROBABILITY = 0.5
# No comparison outcome rules a match out on its own: every m is kept at or above this.
MIN_PROBABILITY = 1e-5
# And no agreement is taken as certain: every u is kept at or above this (an NHS number is
# shared by two different people's records only through an error, about this often per pair).
MIN_CHANCE = 1e-9

HISTORY = "A postcode the person has lived at"
# A level training may never see (postcode histories grow as sources arrive) borrows the
# parameters of the level it stands for: a postcode the person lived at is, as evidence,
# their postcode at another time.
BORROWED_LEVELS = {("postcode", HISTORY): ("postcode", "Exact match on postcode")}

_SWAPPED = (
    "year(birth_date_l) = year(birth_date_r) AND month(birth_date_l) = day(birth_date_r) "
    "AND day(birth_date_l) = month(birth_date_r)"
)


def nhs_number() -> cl.CustomComparison:
    """Exact, or one digit wrong or two neighbours swapped (Damerau-Levenshtein 1)."""
    return cl.CustomComparison(
        [
            cll.NullLevel("nhs_number"),
            cll.ExactMatchLevel("nhs_number"),
            cll.DamerauLevenshteinLevel("nhs_number", 1).configure(
                label_for_charts="One digit wrong or two swapped"
            ),
            cll.ElseLevel(),
        ],
        output_column_name="nhs_number",
    )


def birth_date() -> cl.CustomComparison:
    """Exact (weighted by how common the date is), day and month swapped, one digit wrong."""
    return cl.CustomComparison(
        [
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date", term_frequency_adjustments=True),
            cll.CustomLevel(
                _SWAPPED, label_for_charts="Day and month swapped", base_dialect_str="duckdb"
            ),
            cll.DamerauLevenshteinLevel(
                ColumnExpression("birth_date").cast_to_string(), 1
            ).configure(label_for_charts="One digit wrong or two swapped"),
            cll.ElseLevel(),
        ],
        output_column_name="birth_date",
    )


def postcode() -> cl.CustomComparison:
    """The same postcode (weighted by how many people live there), one the person has lived
    at, the same sector, the same district."""
    return cl.CustomComparison(
        [
            cll.NullLevel("postcode"),
            cll.ExactMatchLevel("postcode", term_frequency_adjustments=True),
            cll.ArrayIntersectLevel("postcodes", 1).configure(label_for_charts=HISTORY),
            cll.ExactMatchLevel("postcode_sector").configure(label_for_charts="Same sector"),
            cll.ExactMatchLevel("postcode_district").configure(label_for_charts="Same district"),
            cll.ElseLevel(),
        ],
        output_column_name="postcode",
    )


def comparisons(optional: tuple[str, ...] = ()) -> list[Any]:
    """Every comparison, with names and address when both inputs carry them."""
    found: list[Any] = [nhs_number(), birth_date(), cl.ExactMatch("sex"), postcode()]
    found += [cl.NameComparison(c) for c in NAME_COLUMNS if c in optional]
    found += [cl.JaroWinklerAtThresholds(c, [0.95, 0.85]) for c in ADDRESS_COLUMNS if c in optional]
    return found


def blocking_rules(optional: tuple[str, ...] = ()) -> list[Any]:
    """Candidate pairs: the same NHS number, date of birth or postcode; with names, the same
    given and family name and year of birth (for records whose date and postcode both moved)."""
    rules: list[Any] = [block_on("nhs_number"), block_on("birth_date"), block_on("postcode")]
    if all(c in optional for c in NAME_COLUMNS):
        rules.append(block_on("given_name", "family_name", "birth_year"))
    return rules


def settings(optional: tuple[str, ...] = ()) -> SettingsCreator:
    """The untrained model over the columns of ``records`` (and ``optional`` ones)."""
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(optional),
        blocking_rules_to_generate_predictions=blocking_rules(optional),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
