"""Who may change a person's choices, and through which channel.

A person acts for themselves. A parent or guardian may act for a child under 13 (from 13 a
child makes their own choice). A lasting power of attorney (health and welfare) holder may act
once the LPA has been recorded with the registry. A GP records type 1 codes only through the
GP-code channel. Anything else is refused before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from confide.choices.model import Actor, Channel, Proxy
from confide.common.errors import InvalidInput

CHILD_AGE_LIMIT = 13

# Office of the Public Guardian references: 12 digits, usually written 7000-1234-5678.
_LPA_REFERENCE = re.compile(r"^[0-9]{4}-?[0-9]{4}-?[0-9]{4}$")

_ALLOWED_CHANNELS = {
    Actor.SELF: {Channel.ONLINE, Channel.LETTER, Channel.PHONE},
    Actor.PARENT: {Channel.PROXY, Channel.ONLINE, Channel.LETTER, Channel.PHONE},
    Actor.LPA: {Channel.PROXY, Channel.ONLINE, Channel.LETTER, Channel.PHONE},
    Actor.GP: {Channel.GP_CODE},
}


class ProxyRefused(InvalidInput):
    """Someone tried to act for a person without the authority to do so."""


def normalise_lpa_reference(raw: str) -> str:
    """``7000-1234-5678`` form, or InvalidInput when it is not an OPG reference."""
    compact = raw.strip().replace(" ", "")
    if not _LPA_REFERENCE.match(compact):
        raise InvalidInput(
            "That is not a lasting power of attorney reference.",
            hint="Use the 12-digit Office of the Public Guardian reference, e.g. 7000-1234-5678.",
        )
    digits = compact.replace("-", "")
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"


def age_on(birth_date: date, today: date) -> int:
    """Completed years of age on ``today``."""
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def authorise(
    actor: Actor,
    channel: Channel,
    proxy: Proxy | None,
    *,
    today: date,
    birth_date_on_record: date | None,
    lpa_on_record: Callable[[str], bool],
) -> dict[str, Any] | None:
    """Check an actor may make this change; returns the proxy details to record (or None).

    ``birth_date_on_record`` is the person's date of birth if the registry holds it (it wins over
    what a parent states); ``lpa_on_record(reference)`` says whether an LPA is recorded.
    """
    if channel not in _ALLOWED_CHANNELS[actor]:
        allowed = ", ".join(sorted(c.value for c in _ALLOWED_CHANNELS[actor]))
        raise ProxyRefused(
            f"A change by {actor.value!r} cannot arrive through the {channel.value!r} channel.",
            hint=f"Use one of: {allowed}.",
        )
    if actor in (Actor.SELF, Actor.GP):
        if proxy is not None:
            raise ProxyRefused(
                "Proxy details were given, but the actor is not a proxy.",
                hint="Use --actor parent or --actor lpa when acting for someone else.",
            )
        return None
    if proxy is None or proxy.kind != actor:
        raise ProxyRefused(
            f"Acting as {actor.value!r} needs the proxy's details.",
            hint="A parent gives the child's date of birth; an attorney gives the LPA reference.",
        )
    if actor == Actor.PARENT:
        birth_date = birth_date_on_record or proxy.child_birth_date
        if birth_date is None:
            raise ProxyRefused(
                "A parent can act only for a child under 13, and the child's date of birth "
                "was not given.",
                hint="Give the child's date of birth.",
            )
        if birth_date > today:
            raise ProxyRefused("The child's date of birth is in the future.")
        if age_on(birth_date, today) >= CHILD_AGE_LIMIT:
            raise ProxyRefused(
                "A parent or guardian can act only for a child under 13; this person is 13 or "
                "older, so nothing was changed.",
                hint="They can make their own choice, or an attorney with a recorded lasting "
                "power of attorney can act for them.",
            )
        return {"kind": Actor.PARENT.value, "basis": "child under 13"}
    if not proxy.lpa_reference:
        raise ProxyRefused(
            "An attorney must give the reference of a recorded lasting power of attorney.",
            hint="Record the LPA first (confide choices record-lpa), then quote its reference.",
        )
    reference = normalise_lpa_reference(proxy.lpa_reference)
    if not lpa_on_record(reference):
        raise ProxyRefused(
            "No lasting power of attorney with that reference is recorded for this person, "
            "so nothing was changed.",
            hint="Record the LPA with the registry (after seeing the registered document) first.",
        )
    return {"kind": Actor.LPA.value, "basis": "recorded LPA", "lpa_reference": reference}
