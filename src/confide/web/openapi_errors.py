"""The API's error bodies as the OpenAPI schema states them.

Every API error is ``{"detail": ...}``: a Confide error's message and what to do
(``{"error", "hint"}``), a validation error list with no input echoed (422), or a plain string
from the framework. Routes declared their own error models, and FastAPI declares its validation
list for every 422, so the published schema said less than the truth and clients generated from
it would reject real answers. This rewrites those error answers in the schema to the one shape
the app really sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM = "Problem"

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": PROBLEM,
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "hint": {"type": "string"}},
                },
                {"type": "array", "items": {"type": "object"}},
                {"type": "string"},
            ]
        }
    },
}


def _ours(answer: dict[str, Any]) -> bool:
    """An error answer with no body stated, or stated with the app's own error models (an
    endpoint with a standard's own error body, such as OAuth's token endpoint, keeps it)."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return True
    target = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    # Models of one name in two modules are published as ``confide__choices__api__ErrorOut``.
    return target.endswith(("ErrorOut", "HTTPValidationError")) and "OAuth" not in target


def with_problem_errors(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that states every 4xx body as the app's one error shape."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})[PROBLEM] = _PROBLEM_SCHEMA
        ref = {"$ref": f"#/components/schemas/{PROBLEM}"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    if str(status)[0] in "45" and _ours(answer):
                        answer["content"] = {"application/json": {"schema": ref}}
        app.openapi_schema = schema
        return schema

    return build
