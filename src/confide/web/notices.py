"""Telling a person that their choices changed (so a change they did not make is noticed).

The demo's notices go to the same outbox folder as the one-time codes. The notice names no
choice-holder and carries only a masked destination, the kind of change and the time.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Protocol

from confide.choices.identity import IdentityService, mask
from confide.choices.model import Actor, Choice, ChoiceEvent
from confide.common.secrets import write_secret
from confide.web.wording import BY_CHOICE


class ChangeNotices(Protocol):
    """Sends the "your choices were changed" notice to a person's registered contact."""

    def choices_changed(
        self, contact: str | None, changes: dict[Choice, bool], at: datetime, by_proxy: bool
    ) -> None: ...


def notice_text(changes: dict[Choice, bool], at: datetime, by_proxy: bool) -> str:
    """The words of the notice: what changed, when, and what to do if it was not you."""
    lines = [
        ("Your child's" if by_proxy else "Your")
        + f" choices about how health data is used were changed on {at:%d %B %Y at %H:%M} UTC:"
    ]
    for choice, on in changes.items():
        words = BY_CHOICE[choice]
        lines.append(f"- {words.when_on if on else words.when_off}")
    lines.append("If you did not make this change, contact your GP practice.")
    return "\n".join(lines)


def tell_person(
    identity: IdentityService, notices: ChangeNotices, nhs_number: str, event: ChoiceEvent
) -> None:
    """Send the notice for ``event`` to the person's registered contact: one path for every
    channel (web pages and API), so no change through any of them goes unnoticed."""
    found = identity.demographics.lookup(nhs_number)
    by_proxy = event.actor in (Actor.PARENT, Actor.LPA)
    notices.choices_changed(
        found[1].contact if found else None, event.changes, event.recorded_at, by_proxy
    )


class OutboxNotices:
    """Writes each notice to ``<folder>/<timestamp>-<random>.json`` (what the demo shows)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def choices_changed(
        self, contact: str | None, changes: dict[Choice, bool], at: datetime, by_proxy: bool
    ) -> None:
        message = {
            "to": mask(contact),
            "kind": "choices_changed",
            "at": at.isoformat(),
            "text": notice_text(changes, at, by_proxy),
        }
        stamp = at.strftime("%Y%m%dT%H%M%S%fZ")
        write_secret(
            self.folder / f"{stamp}-{secrets.token_hex(4)}.json",
            json.dumps(message, indent=2).encode(),
        )
