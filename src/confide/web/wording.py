"""The plain-English words for each choice, in one place for every page and the letter.

Each choice has a short name (the checkbox label), what it means, and what happens to data
that was already uploaded when the choice is turned on.
"""

from __future__ import annotations

from dataclasses import dataclass

from confide.choices.model import Choice


@dataclass(frozen=True)
class ChoiceWords:
    choice: Choice
    label: str
    means: str
    already_uploaded: str
    when_on: str
    when_off: str


CHOICES: tuple[ChoiceWords, ...] = (
    ChoiceWords(
        Choice.NO_COMMERCIAL,
        "Do not let commercial companies use my data",
        "Companies that sell products or services, such as drug or technology companies, will "
        "not be able to use your data, even for research or planning.",
        "Your records stay in the protected store, but are left out of every commercial "
        "project's data from the very next query. Results already published cannot be "
        "recalled, but they only ever contained counts, never your record.",
        "Not used by commercial companies",
        "Commercial companies may use it for approved research or planning",
    ),
    ChoiceWords(
        Choice.NO_RESEARCH,
        "Do not use my data for research",
        "Approved researchers, such as universities, charities and the NHS, will not be able "
        "to use your data to study diseases and treatments.",
        "Your records stay in the protected store, but are left out of every research "
        "project's data from the very next query. Results already published are counts only "
        "and cannot be recalled.",
        "Not used for research",
        "May be used for approved research",
    ),
    ChoiceWords(
        Choice.NO_PLANNING,
        "Do not use my data for planning",
        "The NHS will not use your data to plan and improve services, such as deciding where "
        "to put new clinics, or for public health work.",
        "Your records stay in the protected store, but are left out of every planning "
        "project's data from the very next query. Results already published are counts only "
        "and cannot be recalled.",
        "Not used for planning",
        "May be used for NHS planning and public health",
    ),
    ChoiceWords(
        Choice.SHARE_NOTHING,
        "Share nothing: do not use my data at all, and delete what was uploaded",
        "Nothing from your GP record is used for research or planning by anyone. This is the "
        "same as asking your GP practice to record a 'type 1' opt-out. It does not change the "
        "care you get.",
        "Everything about you that was already uploaded is deleted from the central store and "
        "from every project's data. Anyone who received records about you is told to delete "
        "them too. Your GP practice will not send your data again.",
        "Not shared at all; anything uploaded is deleted",
        "Shared for approved uses, subject to your other choices",
    ),
)

BY_CHOICE = {w.choice: w for w in CHOICES}
