"""Plain-English names for the codes and dates the log uses (purpose, recipient, legal basis…).

The register and the usage report show the same release, so they name its parts the same way.
A code without a name here is shown as it is, with underscores turned into spaces.
"""

from __future__ import annotations

from datetime import date, datetime

PURPOSES = {
    "research": "Research",
    "planning": "Planning NHS services",
    "commissioning": "Commissioning (buying) NHS services",
    "public_health": "Public health",
    "insurance": "Insurance",
    "marketing": "Marketing",
}
RECIPIENTS = {
    "nhs": "The NHS",
    "academic": "A university or research institute",
    "charity": "A charity",
    "commercial": "A commercial company",
}
LEGAL_BASES = {
    "public_task": "Public task",
    "consent": "Consent for this study",
    "copi_reg3": "COPI regulation 3 (public health emergencies)",
    "legitimate_interests": "Legitimate interests",
    "section_251": "Section 251 support",
}
DATA_FORMS = {
    "aggregate": "Counts and summaries, small numbers hidden",
    "dp": "Counts and summaries with added statistical noise",
    "extract": "Records about individual people",
}
DATASETS = {
    "patients": "patients",
    "registrations": "GP registrations",
    "events": "GP diagnoses and tests",
    "medications": "medicines",
    "hospital_episodes": "hospital stays",
    "deaths": "deaths",
}


def label(names: dict[str, str], code: str) -> str:
    """The plain name of ``code`` in ``names``, or the code made readable."""
    return names.get(code, code.replace("_", " "))


def nice_date(text: str) -> str:
    """``2025-03-01`` (or a timestamp) as ``1 March 2025``; anything else as it is."""
    try:
        day = datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        return text
    return f"{day.day} {day:%B %Y}"
