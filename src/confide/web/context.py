"""What the pages work with: the parties the web app talks to, and its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from confide.choices.identity import IdentityService
from confide.choices.registry import ChoicesRegistry
from confide.ledger.log import Ledger
from confide.web.notices import ChangeNotices


@dataclass
class WebState:
    """Shared by every page: held on ``app.state.confide``."""

    registry: ChoicesRegistry
    identity: IdentityService
    ledger: Ledger
    notices: ChangeNotices
    outbox: Path
    demo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def web_state(request: Request) -> WebState:
    return request.app.state.confide


def client_of(request: Request) -> str:
    """The client address the identity check's rate limits count against."""
    return request.client.host if request.client else "unknown"
