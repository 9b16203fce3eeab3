"""Cleaning text people type, the same way for web forms, APIs and the command line."""

from __future__ import annotations

import re
import unicodedata

from confide.common.errors import InvalidInput

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(raw: str, *, limit: int, multiline: bool = False) -> str:
    """Trimmed, NFC text without control characters; InvalidInput when over ``limit``."""
    text = unicodedata.normalize("NFC", raw)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = " ".join(text.split())
    else:
        text = "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()
    text = CONTROL_CHARS.sub("", text)
    if len(text) > limit:
        raise InvalidInput(f"This must be {limit} characters or fewer.")
    return text
