"""UK postcodes: normalisation to the standard form and the coarser areas the hub may hold.

A postcode is an outward code (area letters, district) and an inward code (sector digit and
unit letters): ``LS1 4AP``. The hub never holds a full postcode; it holds the postcode
district (the outward code, about 10,000 people each on average).
"""

from __future__ import annotations

import re

# The official pattern (BS 7666), plus the special GIR 0AA.
_POSTCODE = re.compile(
    r"^(?P<outward>[A-Z]{1,2}[0-9][A-Z0-9]?)(?P<inward>[0-9][ABD-HJLNP-UW-Z]{2})$"
)


def normalise(raw: str | None) -> str | None:
    """Upper-case, single space before the inward code; None when it is not a valid postcode."""
    if raw is None:
        return None
    compact = "".join(raw.split()).upper()
    if compact == "GIR0AA":
        return "GIR 0AA"
    match = _POSTCODE.match(compact)
    if match is None:
        return None
    return f"{match['outward']} {match['inward']}"


def district(raw: str | None) -> str | None:
    """The outward code (``LS1``) of a valid postcode, else None."""
    normal = normalise(raw)
    if normal is None:
        return None
    return normal.split(" ")[0]


def sector(raw: str | None) -> str | None:
    """The postcode sector (``LS1 4``), else None."""
    normal = normalise(raw)
    if normal is None:
        return None
    outward, inward = normal.split(" ")
    return f"{outward} {inward[0]}"
