"""The roll-out's HTTP API (``/api/rollout``): the public figures for anyone, the national and
area switches for people holding the operator role (bearer tokens from the access party).

Errors follow the access API: 401 without a valid token, 403 without the operator role, 404
for an unknown area, 422 for bad input (a missing reason).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from confide.access.api import principal_dependency
from confide.access.errors import Forbidden
from confide.access.model import Principal, Role
from confide.access.service import Access
from confide.common.errors import ConfideError
from confide.common.home import Home
from confide.rollout.figures import public_figures
from confide.rollout.service import LedgerPort, Rollout
from confide.tre.api import http_error

PREFIX = "/api/rollout"


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


def require_operator(who: Principal) -> None:
    if not who.has(Role.OPERATOR):
        raise Forbidden(
            "You need the operator role to pause or resume the roll-out.",
            hint="Ask an administrator of your organisation to grant the operator role.",
        )


def make_router(home: Home, ledger: LedgerPort, access: Access) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["rollout"])
    caller = Depends(principal_dependency(lambda: access, prefix="/api/access"))

    @contextlib.contextmanager
    def opened() -> Iterator[Rollout]:
        rollout = Rollout.open(home, ledger)
        try:
            yield rollout
        except ConfideError as exc:
            raise http_error(exc) from None
        finally:
            rollout.close()

    def switch(who: Principal, act: Any) -> dict[str, Any]:
        with opened() as rollout:
            require_operator(who)
            act(rollout)
            return public_figures(rollout.store)

    @router.get("", summary="Which practices and areas are live, paused or declined")
    def figures() -> dict[str, Any]:
        with opened() as rollout:
            return public_figures(rollout.store)

    @router.post("/pause", summary="Pause extraction, ingest and releases everywhere (operators)")
    def pause(body: SwitchIn, who: Principal = caller) -> dict[str, Any]:
        return switch(who, lambda r: r.pause(body.reason, role=Role.OPERATOR.value))

    @router.post("/resume", summary="Resume after a national pause (operators)")
    def resume(body: SwitchIn, who: Principal = caller) -> dict[str, Any]:
        return switch(who, lambda r: r.resume(body.reason, role=Role.OPERATOR.value))

    @router.post("/areas/{area}/pause", summary="Pause one area (operators)")
    def pause_area(area: str, body: SwitchIn, who: Principal = caller) -> dict[str, Any]:
        return switch(who, lambda r: r.pause_area(area, body.reason, role=Role.OPERATOR.value))

    @router.post("/areas/{area}/resume", summary="Resume one area (operators)")
    def resume_area(area: str, body: SwitchIn, who: Principal = caller) -> dict[str, Any]:
        return switch(who, lambda r: r.resume_area(area, body.reason, role=Role.OPERATOR.value))

    return router
