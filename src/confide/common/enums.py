"""Reading a named value (a role, a purpose, a choice…) from what a person typed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from confide.common.errors import InvalidInput


def parse_enum(kind: type[StrEnum], what: str, raw: object) -> Any:
    """``kind`` from user input: case, spaces and hyphens do not matter (``No-Research``,
    ``no research`` and ``NO_RESEARCH`` are one value); anything else is a clear error that
    lists the accepted values."""
    if isinstance(raw, kind):
        return raw
    try:
        return kind(str(raw).strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise InvalidInput(
            f"Unknown {what} {str(raw)[:40]!r}.", hint=f"Use one of: {known}."
        ) from None
