"""The TRE HTTP API (mounted at ``/api/tre``): queries, budgets and the review queue.

Every endpoint acts for the bearer token's person and organisation (the access party's
``principal_dependency``). Errors follow the access API: 401 without a valid token, 403 for a
missing role, 404 for anything of another organisation (indistinguishable from nothing), 409
for an output already decided, 422 for bad input. A query's own refusal is not an HTTP error:
it is an outcome with ``status: refused`` and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from confide.access.api import principal_dependency
from confide.access.errors import Conflict, Forbidden, Unauthenticated
from confide.access.model import Principal
from confide.access.service import Access
from confide.common.errors import ConfideError, InvalidInput, NotFound
from confide.tre.review import ReviewQueue
from confide.tre.service import QueryService

PREFIX = "/api/tre"


def http_error(exc: ConfideError) -> HTTPException:
    """The access API's mapping of refusals to HTTP statuses."""
    code = status.HTTP_400_BAD_REQUEST
    for kind, mapped in (
        (Unauthenticated, status.HTTP_401_UNAUTHORIZED),
        (Forbidden, status.HTTP_403_FORBIDDEN),
        (NotFound, status.HTTP_404_NOT_FOUND),
        (Conflict, status.HTTP_409_CONFLICT),
        (InvalidInput, status.HTTP_422_UNPROCESSABLE_CONTENT),
    ):
        if isinstance(exc, kind):
            code = mapped
            break
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return HTTPException(code, detail=exc.as_dict(), headers=headers)


class QueryIn(BaseModel):
    """One query: aggregate SQL (``sql``, with ``bounds`` for its value measures), or a
    definition (``definition``: population, dimensions, measures). The protection is the
    project's, set by its approver: there is no option to choose it."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(min_length=1, max_length=80)
    sql: str | None = Field(default=None, min_length=1, max_length=20_000)
    definition: dict[str, Any] | None = Field(
        default=None,
        description="population (person-level SQL), dimensions and measures; see "
        "docs/researchers.md",
    )
    bounds: dict[str, tuple[float, float]] | None = Field(
        default=None, description="Bounds of value measures by output name, [low, high]."
    )
    totals: bool = Field(default=False, description="Add totals over each dimension.")
    epsilon: float | None = Field(
        default=None, gt=0, le=10, description="DP projects: the budget this query spends."
    )

    def query(self) -> str | dict[str, Any]:
        if (self.sql is None) == (self.definition is None):
            raise InvalidInput("Send either sql or definition (one of them).")
        return self.sql if self.sql is not None else dict(self.definition or {})


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: str = Field(min_length=1, max_length=2000)


def make_router(
    service: QueryService | Callable[[], QueryService],
    review: ReviewQueue | Callable[[], ReviewQueue],
    access: Access | Callable[[], Access],
    *,
    access_prefix: str = "/api/access",
) -> APIRouter:
    """The ``/api/tre`` router over a query service, review queue and access party."""
    get_service: Callable[[], QueryService] = service if callable(service) else (lambda: service)
    get_review: Callable[[], ReviewQueue] = (
        (lambda: review) if isinstance(review, ReviewQueue) else review
    )
    get_access: Callable[[], Access] = access if callable(access) else (lambda: access)
    router = APIRouter(prefix=PREFIX, tags=["tre"])
    caller = Depends(principal_dependency(get_access, prefix=access_prefix))

    def run(action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ConfideError as exc:
            raise http_error(exc) from None

    @router.post("/queries", summary="Run a query for one of your organisation's projects")
    def post_query(body: QueryIn, principal: Principal = caller) -> Any:
        outcome = run(
            lambda: get_service().run(
                principal,
                body.project,
                body.query(),
                bounds=body.bounds,
                totals=body.totals,
                epsilon=body.epsilon,
            )
        )
        return outcome.as_dict()

    @router.get("/queries/{query_id}", summary="One of your organisation's queries")
    def get_query(query_id: str, principal: Principal = caller) -> Any:
        return run(lambda: get_service().show(principal, query_id)).as_dict()

    @router.get("/projects/{slug}/budget", summary="A project's privacy budget")
    def get_budget(slug: str, principal: Principal = caller) -> Any:
        return run(lambda: get_service().budget(principal, slug))

    @router.get("/review/queue", summary="Outputs waiting for review (output checkers)")
    def review_queue(principal: Principal = caller) -> Any:
        return {"items": run(lambda: get_review().queue(principal))}

    @router.post("/review/{query_id}/vote", summary="Vote on a held output (output checkers)")
    def vote(query_id: str, body: VoteIn, principal: Principal = caller) -> Any:
        return run(lambda: get_review().vote(principal, query_id, body.approve, body.reason))

    return router
