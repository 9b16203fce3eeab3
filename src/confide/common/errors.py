"""Errors a person can act on.

Every error raised for bad input is a ``ConfideError`` whose message says what was wrong and
what to do next, in words a practice manager, researcher or patient understands. Messages never
carry an identifier (NHS number, name, date of birth, postcode).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from confide.common import exit_codes


class ConfideError(Exception):
    """A problem the user can fix; the CLI prints it and exits non-zero."""

    exit_code = exit_codes.BAD_REQUEST

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def prefixed(self, prefix: str) -> Self:
        """This error with ``prefix`` before its message (which item of a batch was wrong)."""
        self.message = f"{prefix}{self.message}"
        self.args = (self.message,)
        return self

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


@contextmanager
def reading_file(path: Path, if_folder: str) -> Iterator[None]:
    """Read ``path`` inside this block: a folder (``{path} {if_folder}``), a missing file or an
    unreadable one becomes a :class:`FileProblem` that says which, with what to do."""
    where = path.resolve()
    if path.is_dir():
        raise FileProblem(f"{where} {if_folder}", hint="Give a file.")
    try:
        yield
    except FileNotFoundError:
        raise FileProblem(f"{where} does not exist.", hint="Check the file path.") from None
    except OSError as exc:
        raise FileProblem(
            f"{where} cannot be read ({exc.strerror or type(exc).__name__}).",
            hint="Check the file path and its permissions.",
        ) from None


class InUse(ConfideError):
    """State that another Confide process holds open (the embedded stores are single-process)."""

    exit_code = exit_codes.IN_USE


def in_use(what: str) -> InUse:
    return InUse(
        f"The {what} is open in another Confide process (for example `confide serve`).",
        hint="Stop that process first, or use the web pages or HTTP API it serves.",
    )
