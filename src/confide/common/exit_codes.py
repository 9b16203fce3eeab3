"""Every exit code the ``confide`` command can return, each with exactly one meaning.

This table is the single source: the error classes take their codes from it, the one error
handler (:mod:`confide.cli.failures`) returns them, and docs/errors.md is generated from it
(``python -m confide.cli.errors_doc``; a test fails when the page is stale).

Kept free of imports so that ``confide --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExitCode:
    """One exit code: its number, a name for programs, what it means, what to do."""

    code: int
    name: str
    meaning: str
    what_to_do: str


OK = 0
BUG = 1
BAD_REQUEST = 2
NOT_FOUND = 3
LOG_TAMPERED = 4
FORBIDDEN = 5
NOT_SIGNED_IN = 6
LOCKED_OUT = 7
IN_USE = 8
FILES = 9
INVALID_LINES = 10
UNAVAILABLE = 11
PARTLY_DONE = 12
INTERRUPTED = 130

TABLE: tuple[ExitCode, ...] = (
    ExitCode(OK, "ok", "The command did what was asked.", "Nothing."),
    ExitCode(
        BUG,
        "bug",
        "Confide itself went wrong; nothing you typed was at fault.",
        "Run the command again with CONFIDE_DEBUG=1 set to see the details, and report them.",
    ),
    ExitCode(
        BAD_REQUEST,
        "bad_request",
        "The command line or its input is wrong: an unknown option, a missing or invalid "
        "value, a file that fails validation as a whole, a use the policy refuses.",
        "Read the message; `confide COMMAND --help` lists what the command takes.",
    ),
    ExitCode(
        NOT_FOUND,
        "not_found",
        "Something named does not exist, or is not visible to you: a project, a review item, "
        "a Confide home folder.",
        "Check the name (the message says which), or give --home of an existing installation.",
    ),
    ExitCode(
        LOG_TAMPERED,
        "log_tampered",
        "The transparency log does not match its own signed checkpoints, or a witness has "
        "seen a different version of it.",
        "Keep the output as evidence and tell the log's operator and its witnesses.",
    ),
    ExitCode(
        FORBIDDEN,
        "forbidden",
        "You are known, but your role does not allow this action.",
        "Ask an administrator of your organisation for the role the message names.",
    ),
    ExitCode(
        NOT_SIGNED_IN,
        "not_signed_in",
        "No valid credentials: a token, code or session that is missing, wrong or expired.",
        "Get a new token (`confide access token`) or a new code, and try again.",
    ),
    ExitCode(
        LOCKED_OUT,
        "locked_out",
        "Too many attempts: further tries are refused for a while.",
        "Wait for the time the message gives, then try again.",
    ),
    ExitCode(
        IN_USE,
        "in_use",
        "Another Confide process (for example `confide serve`) holds the home folder open.",
        "Stop that process, or use the web pages or HTTP API it serves.",
    ),
    ExitCode(
        FILES,
        "files",
        "A file or folder cannot be read or written: no permission, a read-only disk, a "
        "missing folder, a file where a folder is expected, or a full disk.",
        "The message gives the full path: fix its permissions or give another path.",
    ),
    ExitCode(
        INVALID_LINES,
        "invalid_lines",
        "One or more lines of an input list were invalid (`choices check`, `choices import`); "
        "each is reported on standard error with its line number and reason.",
        "Correct those lines and run the command again; with --all-or-nothing or `choices "
        "import` nothing was written or recorded.",
    ),
    ExitCode(
        UNAVAILABLE,
        "unavailable",
        "Something this command needs is not installed or cannot be reached: Spark and Java, "
        "or a Confide server at the URL given.",
        "Install what the message names, or check the URL and that the server is running.",
    ),
    ExitCode(
        PARTLY_DONE,
        "partly_done",
        "One or more of several items were refused, any others done (submissions given to hub "
        "ingest, witnesses asked to cosign); the output lists each with its reason.",
        "Fix the refused items and run the command again for them: the done ones stay done.",
    ),
    ExitCode(
        INTERRUPTED,
        "interrupted",
        "Stopped by Ctrl+C before it finished.",
        "Run it again; read-only commands (such as `confide hub status`) show what was done.",
    ),
)

BY_CODE: dict[int, ExitCode] = {e.code: e for e in TABLE}
