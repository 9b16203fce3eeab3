"""The one place where any exception becomes a message and an exit code (never a traceback).

Every command runs inside :func:`guard` (through ``handle_errors``) and the ``confide``
entry point wraps the whole command line in it again, so usage errors, errors raised outside
a command and exceptions nobody anticipated take the same path: a message on standard error
saying what went wrong and what to do, the same as a JSON object on standard output with
``--json``, and the exit code from :mod:`confide.common.exit_codes`.

Messages of unanticipated exceptions are never printed (they might carry an identifier):
only their class. ``CONFIDE_DEBUG=1`` shows the traceback, for whoever is fixing the bug.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from confide.common import exit_codes

DEBUG_VARIABLE = "CONFIDE_DEBUG"


@dataclass(frozen=True)
class Failure:
    """What to tell the person: the exit code, what went wrong, what to do."""

    code: int
    message: str
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.hint:
            out["hint"] = self.hint
        out["exit_code"] = self.code
        out["kind"] = exit_codes.BY_CODE[self.code].name
        return out


def _path_of(exc: OSError) -> str | None:
    name = exc.filename
    if name is None:
        return None
    return os.path.abspath(os.fsdecode(name))


def _is(*kinds: type[OSError]) -> Callable[[OSError], bool]:
    return lambda exc: isinstance(exc, kinds)


def _errno(*codes: int) -> Callable[[OSError], bool]:
    return lambda exc: exc.errno in codes


# OS errors in the order they are tried: which ones, the exit code, what went wrong at
# ``{where}`` and the usual remedy. The first that matches says it.
_OS_FAILURES: tuple[tuple[Callable[[OSError], bool], int, str, str], ...] = (
    (
        _errno(errno.EROFS),
        exit_codes.FILES,
        "{where} is on a read-only disk, and this command needs to write there.",
        "Give --home (or --out) a folder on a writable disk.",
    ),
    (
        _is(PermissionError),
        exit_codes.FILES,
        "Permission denied for {where}.",
        "Give a path you may read and write, or ask its owner to change its permissions.",
    ),
    (
        _is(FileNotFoundError),
        exit_codes.FILES,
        "{where} does not exist.",
        "Check the path; folders that hold input are not created for you.",
    ),
    (
        _is(NotADirectoryError),
        exit_codes.FILES,
        "{where} is a file (or lies under one) where a folder is expected.",
        "Give the path of a folder.",
    ),
    (
        _is(IsADirectoryError),
        exit_codes.FILES,
        "{where} is a folder where a file is expected.",
        "Give the path of a file.",
    ),
    (
        _is(FileExistsError),
        exit_codes.FILES,
        "{where} already exists.",
        "Give a new path, or move the existing one away first.",
    ),
    (
        _errno(errno.ENOSPC, getattr(errno, "EDQUOT", -1)),
        exit_codes.FILES,
        "The disk holding {where} is full.",
        "Free some space, or give a folder on another disk.",
    ),
    (
        _is(ConnectionError, TimeoutError),
        exit_codes.UNAVAILABLE,
        "A server this command needs did not answer.",
        "Check the URL and that the server is running.",
    ),
)


def _os_failure(exc: OSError) -> Failure:
    """OS errors, with the full path and the usual remedy for each kind."""
    path = _path_of(exc)
    where = path or "a file or folder"
    for matches, code, message, hint in _OS_FAILURES:
        if matches(exc):
            return Failure(code, message.format(where=where), hint)
    reason = exc.strerror or type(exc).__name__
    return Failure(
        exit_codes.FILES,
        f"{where} cannot be used: {reason}.",
        "Check the path and its permissions.",
    )


_STORE_WORDS = (
    ("readonly database", errno.EROFS),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("unable to open database file", errno.EACCES),
    ("no such file or directory", errno.ENOENT),
    ("not a directory", errno.ENOTDIR),
    ("no space left", errno.ENOSPC),
    ("disk is full", errno.ENOSPC),
)


def _store_failure(exc: BaseException) -> Failure | None:
    """Database drivers (SQLite, DuckDB) report file problems in their own exceptions."""
    module = type(exc).__module__ or ""
    if not module.startswith(("sqlite3", "duckdb", "_duckdb", "sqlalchemy")):
        return None
    text = str(exc).lower()
    for words, code in _STORE_WORDS:
        if words in text:
            failure = _os_failure(OSError(code, os.strerror(code)))
            return Failure(
                failure.code,
                failure.message.replace("a file or folder", "A store in the home folder", 1),
                "Give --home a folder you may write to (its state must be writable).",
            )
    if "lock" in text and "conflicting" in text:
        from confide.common.errors import in_use

        return describe(in_use("home folder"))
    return None


def _lineage(exc: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(exc).__mro__}


def is_command_line_error(exc: BaseException) -> bool:
    """Typer's (or click's) usage errors, whichever copy of click raised them."""
    module = type(exc).__module__ or ""
    return module.startswith(("typer", "click")) and "UsageError" in _lineage(exc)


def _click_failure(exc: BaseException) -> Failure | None:
    module = type(exc).__module__ or ""
    if not module.startswith(("typer", "click")):
        return None
    lineage = _lineage(exc)
    if "UsageError" in lineage:
        ctx = getattr(exc, "ctx", None)
        command = getattr(ctx, "command_path", None) or "confide"
        return Failure(
            exit_codes.BAD_REQUEST,
            exc.format_message(),  # type: ignore[attr-defined]  # a click UsageError
            f"Run `{command} --help` to see what it takes.",
        )
    if "ClickException" in lineage or "TyperException" in lineage:
        return Failure(exit_codes.BAD_REQUEST, exc.format_message())  # type: ignore[attr-defined]  # click's
    if "Abort" in lineage:
        return Failure(exit_codes.INTERRUPTED, "Stopped before it finished.")
    return None


def _network_failure(exc: BaseException) -> Failure | None:
    module = type(exc).__module__ or ""
    if not module.startswith(("httpx", "httpcore")):
        return None
    return Failure(
        exit_codes.UNAVAILABLE,
        "The server at the URL given could not be reached, or did not answer in time.",
        "Check the URL and that the server is running.",
    )


def describe(exc: BaseException) -> Failure:
    """The message, hint and exit code for any exception, by its class (always a hint: the
    table's advice for the code when the error gave none)."""
    failure = _describe(exc)
    if failure.hint:
        return failure
    return Failure(failure.code, failure.message, exit_codes.BY_CODE[failure.code].what_to_do)


def _describe(exc: BaseException) -> Failure:
    from confide.common.errors import ConfideError

    if isinstance(exc, ConfideError):
        return Failure(exc.exit_code, exc.message, exc.hint)
    if isinstance(exc, KeyboardInterrupt):
        return Failure(exit_codes.INTERRUPTED, "Stopped by Ctrl+C before it finished.")
    found = _click_failure(exc) or _store_failure(exc) or _network_failure(exc)
    if found is not None:
        return found
    if isinstance(exc, OSError):
        return _os_failure(exc)
    if isinstance(exc, MemoryError):
        return Failure(
            exit_codes.BUG,
            "This machine ran out of memory.",
            "Close other programs or use a machine with more memory.",
        )
    return Failure(
        exit_codes.BUG,
        f"Confide went wrong ({type(exc).__name__}); nothing you typed was at fault.",
        f"Run the command again with {DEBUG_VARIABLE}=1 set to see the details, and report them.",
    )


def show(failure: Failure, as_json: bool) -> None:
    """Print the failure: always on standard error, also as JSON on standard output."""
    if as_json:
        import orjson

        sys.stdout.write(orjson.dumps(failure.as_dict()).decode() + "\n")
        sys.stdout.flush()
    from rich.markup import escape

    from confide.cli.output import err_console

    err_console.print(
        f"[bold red]Error:[/] {escape(failure.message)}", highlight=False, soft_wrap=True
    )
    if failure.hint:
        err_console.print(
            f"[yellow]What to do:[/] {escape(failure.hint)}", highlight=False, soft_wrap=True
        )


def _debug(exc: BaseException) -> None:
    from confide.common import settings

    if settings.value(DEBUG_VARIABLE) and not _is_expected(exc):
        traceback.print_exception(exc, file=sys.stderr)


def _is_expected(exc: BaseException) -> bool:
    from confide.common.errors import ConfideError

    return isinstance(exc, (ConfideError, KeyboardInterrupt)) or _click_failure(exc) is not None


def fail(exc: BaseException, as_json: bool) -> NoReturn:
    """Report ``exc`` and leave with its exit code."""
    _debug(exc)
    failure = describe(exc)
    show(failure, as_json)
    raise SystemExit(failure.code)


def wants_json(argv: list[str]) -> bool:
    """Whether the command line asked for JSON (also when it is otherwise wrong)."""
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
