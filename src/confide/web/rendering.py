"""Jinja2 templates: Confide's own pages over the NHS.UK design system's components."""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, ChoiceLoader, Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from confide.web.security import CSRF_FIELD, csrf_token

SERVICE_NAME = "Confide"


def make_environment() -> Environment:
    """Our templates first, then ``nhsuk_frontend_jinja``'s components (``nhsuk/...``)."""
    return Environment(
        loader=ChoiceLoader(
            [PackageLoader("confide.web", "templates"), PackageLoader("nhsuk_frontend_jinja")]
        ),
        undefined=ChainableUndefined,  # the NHS macros read optional nested parameters
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_templates = Jinja2Templates(env=make_environment())


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page with what every page needs (CSRF token, demo flag, signed-in state)."""
    state = getattr(request.app.state, "confide", None)
    values = {
        "service_name": SERVICE_NAME,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request),
        "demo": bool(state and state.demo),
        "signed_in": bool(request.session.get("token")),
        **(context or {}),
    }
    return _templates.TemplateResponse(request, name, values, status_code=status_code)


def render_text(name: str, context: dict[str, Any] | None = None) -> str:
    """A template rendered outside any request (the generic 500 page)."""
    values = {"service_name": SERVICE_NAME, "csrf_token": "", "signed_in": False}
    return _templates.env.get_template(name).render(**values, **(context or {}))
