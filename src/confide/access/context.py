"""What every part of the access service shares: its store, its clock and its listeners.

The parts (directory, tokens, projects, workflow, grants) each get the same :class:`Context`
from :class:`~confide.access.service.Access`, so a clock or a listener given to the service is
the one every part uses, even when a test swaps it after the service was built.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine

Listener = Callable[[str, dict[str, Any]], None]
Clock = Callable[[], datetime]


class Notice(NamedTuple):
    """What the listeners hear after a commit: the kind of change and its public body."""

    kind: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Context:
    """The store, the clock and the listeners of one :class:`Access`, shared by its parts."""

    engine: Engine
    now: Clock
    """The service's current time, aware and in UTC (read afresh on every call)."""
    tell: Callable[[Notice], None]
    """Tell the listeners; call only after the change has been committed."""


def new_id() -> str:
    return uuid.uuid4().hex
