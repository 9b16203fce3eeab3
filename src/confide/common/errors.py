"""Errors a person can act on.

Every error raised for bad input is a ``ConfideError`` whose message says what was wrong and
what to do next, in words a practice manager, researcher or patient understands. Messages never
carry an identifier (NHS number, name, date of birth, postcode).
"""

from __future__ import annotations

from confide.common import exit_codes


class ConfideError(Exception):
    """A problem the user can fix; the CLI prints it and exits non-zero."""

    exit_code = exit_codes.BAD_REQUEST

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def as_dict(self) -> dict[str, str]:
        out = {"error": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class InvalidInput(ConfideError):
    """Input that cannot be read or fails validation as a whole."""


class SubmissionRejected(ConfideError):
    """A submission the hub refuses in full (bad signature, damaged files, unknown source)."""


class NotFound(ConfideError):
    """Something asked for does not exist (or the asker may not know that it does)."""

    exit_code = exit_codes.NOT_FOUND


class FileProblem(ConfideError):
    """A file or folder that cannot be read or written (the message gives its full path)."""

    exit_code = exit_codes.FILES


class InUse(ConfideError):
    """State that another Confide process holds open (the embedded stores are single-process)."""

    exit_code = exit_codes.IN_USE


def in_use(what: str) -> InUse:
    return InUse(
        f"The {what} is open in another Confide process (for example `confide serve`).",
        hint="Stop that process first, or use the web pages or HTTP API it serves.",
    )
