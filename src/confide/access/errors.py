"""The access party's refusals, one class per HTTP meaning.

``NotFound`` (from ``confide.common.errors``) doubles as "not yours": a project of another
organisation is reported exactly like one that does not exist, so existence never leaks across
tenants.
"""

from __future__ import annotations

from confide.common import exit_codes
from confide.common.errors import ConfideError, InvalidInput, NotFound


class Unauthenticated(ConfideError):
    """No valid credentials: the same message whether the client exists or not."""

    exit_code = exit_codes.NOT_SIGNED_IN


class Forbidden(ConfideError):
    """The caller is known and may see the thing, but may not do this to it."""

    exit_code = exit_codes.FORBIDDEN


class Conflict(InvalidInput):
    """The request is well formed but the project is not in a state that allows it."""


PROJECT_NOT_FOUND = "No project of that name is visible to your organisation."
PROJECT_NOT_FOUND_HINT = "Check the project name with `confide access project list`."


def project_not_found() -> NotFound:
    """The one answer for "no such project" and "another organisation's project"."""
    return NotFound(PROJECT_NOT_FOUND, hint=PROJECT_NOT_FOUND_HINT)


BAD_CREDENTIALS = "The client credentials were not accepted."
BAD_TOKEN = "The access token is not valid or has expired."
