"""The plain-English words for each choice, in one place for every page and the letter.

Each choice has a short name (the checkbox label), what it means, and what happens to data
that was already uploaded when the choice is turned on.
"""

from __future__ import annotations

from dataclasses import dataclass

from confide.choices.model import Choice


@dataclass(frozen=True)
class ChoiceWords:
    """``topic`` names what a row of "Your choices" is about, so its value reads one way."""

    choice: Choice
    label: str
    means: str
    already_uploaded: str
    when_on: str
    when_off: str
    topic: str


CHOICES: tuple[ChoiceWords, ...] = (
    ChoiceWords(
        Choice.NO_COMMERCIAL,
        "Do not let commercial companies use my data",
        "Companies that sell things, such as drug companies, will not get your data. This is "
        "for research and for planning.",
        "Your records stay where they are kept safe. But from the next question on, no "
        "company gets them. Results that were already shared only held counts, not your "
        "record. They cannot be taken back.",
        "Not used by commercial companies",
        "Companies may use it for approved uses",
        "Use by companies",
    ),
    ChoiceWords(
        Choice.NO_RESEARCH,
        "Do not use my data for research",
        "Researchers, such as universities, charities and the NHS, will not use your data to "
        "study illness and care.",
        "Your records stay where they are kept safe. But from the next question on, no "
        "research project gets them. Results that were already shared are only counts. They "
        "cannot be taken back.",
        "Not used for research",
        "May be used for approved research",
        "Research",
    ),
    ChoiceWords(
        Choice.NO_PLANNING,
        "Do not use my data for planning",
        "The NHS will not use your data to plan its care, such as where to put a new clinic.",
        "Your records stay where they are kept safe. But from the next question on, no "
        "planning project gets them. Results that were already shared are only counts. They "
        "cannot be taken back.",
        "Not used for planning",
        "May be used for NHS planning and public health",
        "Planning",
    ),
    ChoiceWords(
        Choice.SHARE_NOTHING,
        "Share nothing: do not use my data at all, and delete what was uploaded",
        "Nobody uses anything from your GP record. This is the same as asking your GP to "
        "add a 'type 1' opt-out. It does not change the care you get.",
        "All we hold about you is deleted. Any project that got your records is told to "
        "delete them too. Your GP will not send your data again.",
        "Not shared at all; anything uploaded is deleted",
        "Shared for approved uses, unless another choice here says not",
        "Sharing your data at all",
    ),
)

BY_CHOICE = {w.choice: w for w in CHOICES}
