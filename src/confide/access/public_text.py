"""Text the access party publishes (titles, lay summaries, decision reasons): one check for
every entry point, so the API, the CLI and the web forms refuse exactly the same things."""

from __future__ import annotations

import re

from confide.common.errors import InvalidInput
from confide.common.text import clean_text
from confide.ledger.entries import find_identifiers

_MARKUP = re.compile(r"<\s*[A-Za-z/!?]")


def public_text(raw: str, *, what: str, limit: int, multiline: bool = False) -> str:
    """Text that may be published: bounded, without markup and without an identifier.
    Messages name the field, never repeat the value."""
    raw = str(raw or "")
    if len(raw) > limit * 2:
        raise InvalidInput(f"{what} must be {limit} characters or fewer.")
    try:
        text = clean_text(raw, limit=limit, multiline=multiline)
    except InvalidInput:
        raise InvalidInput(f"{what} must be {limit} characters or fewer.") from None
    if _MARKUP.search(text):
        raise InvalidInput(f"{what} must not contain HTML or script tags.")
    if find_identifiers(text):
        raise InvalidInput(
            f"{what} seems to contain an NHS number or a postcode. It may be published: "
            "name nobody."
        )
    return text
