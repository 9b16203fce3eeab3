"""What every notice says: what is collected, the four choices, how to make them, by when.

One source for the letter, the email and the NHS App message, so no channel tells less.
"""

from __future__ import annotations

from datetime import date, timedelta

COLLECTED = (
    "From your GP record: coded diagnoses, test results, medicines, referrals and your "
    "registrations, with your year and month of birth, sex and area. Never your name, "
    "address, free-text notes or letters. Your NHS number, date of birth and postcode are "
    "sealed at the practice and replaced by a code before anyone at the centre sees a record."
)
USES = (
    "Approved NHS planning and medical research only. Researchers never receive records: "
    "only checked totals leave, and every use is published in a public log."
)
CHOICES = (
    (
        "Share nothing",
        "nothing from your GP record leaves the practice, and anything already "
        "collected is deleted",
    ),
    ("No research", "your record is not used for research"),
    ("No planning", "your record is not used for planning NHS services"),
    ("No commercial use", "your record is never used by or for a commercial company"),
)
HOW = (
    "Online at the Confide website (choose 'Make or change your choices'); in the NHS App; by "
    "asking your GP practice; or by post, with the form your practice can print. You can "
    "change your mind at any time, and your choice applies from the next use."
)
SUBJECT = "How your GP record will be used for planning and research"


def deadline(sent_on: date, weeks: int) -> date:
    """The last day to choose before anything of yours is collected."""
    return sent_on + timedelta(weeks=weeks) - timedelta(days=1)


def paragraphs(practice: str, sent_on: date, weeks: int) -> list[str]:
    """The body of every notice, one paragraph each."""
    by = deadline(sent_on, weeks)
    lines = [
        f"{practice} is taking part in Confide, which collects GP records for NHS planning "
        "and research. Nothing of yours will be collected before you have had time to choose.",
        f"What is collected. {COLLECTED}",
        f"What it is used for. {USES}",
        "Your four choices:",
        *(f"- {name}: {effect}." for name, effect in CHOICES),
        f"How to choose. {HOW}",
        f"By when. Make your choice by {by:%d %B %Y} and nothing of yours is collected "
        f"against it. You can also choose at any time after that.",
    ]
    return lines
