"""Every setting an operator can make through the environment, declared once, here.

Code reads a setting only through :func:`value`, which refuses a name not in :data:`SETTINGS`;
docs/operators.md carries the table generated from it (``python -m confide.common.settings``),
and a test fails when a ``CONFIDE_`` name in the code is missing here or the page is stale.
Command-line options are documented in docs/cli.md, generated from the commands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its default (None: unset) and what it does."""

    name: str
    default: str | None
    help: str


HOME = Setting(
    "CONFIDE_HOME",
    ".confide",
    "The folder holding all state, one sub-folder per party, when a command is given no "
    "--home. Relative to the folder the command runs in.",
)
DATABASE_URL = Setting(
    "CONFIDE_DATABASE_URL",
    None,
    "The operational store for every party, as a SQLAlchemy URL (for example "
    "postgresql+psycopg://USER@HOST:5432/DBNAME). Unset: a SQLite file in each party's folder.",
)
DATABASE_SCHEMA_PREFIX = Setting(
    "CONFIDE_DATABASE_SCHEMA_PREFIX",
    "confide_",
    "With PostgreSQL, the prefix of each party's schema (confide_hub, confide_choices, ...).",
)
LEDGER_ORIGIN = Setting(
    "CONFIDE_LEDGER_ORIGIN",
    None,
    "The transparency log's name in its signed checkpoints, read once, when the log is first "
    "made. Unset: a unique name made up on first use.",
)
WITNESS_NAME = Setting(
    "CONFIDE_WITNESS_NAME",
    None,
    "A witness's name in its cosignatures, read once, when the witness is first set up. "
    "Unset: a unique name made up then.",
)
GP_TOKEN = Setting(
    "CONFIDE_GP_TOKEN",
    None,
    "The bearer token GP systems, proxies' services and the national service present to "
    "`confide serve` to record type 1 codes (/api/choices/gp/type1) and import choices "
    "(/api/choices/import). Unset: those endpoints answer 503.",
)
ACCESS_TOKEN = Setting(
    "CONFIDE_ACCESS_TOKEN",
    None,
    "A staff member's bearer token for the access and query commands, instead of --token.",
)
CLIENT_ID = Setting(
    "CONFIDE_CLIENT_ID",
    None,
    "An API client's id for `confide access token`, instead of --client-id.",
)
CLIENT_SECRET = Setting(
    "CONFIDE_CLIENT_SECRET",
    None,
    "An API client's secret for `confide access token`, instead of --client-secret (which "
    "would show in the shell's history).",
)
DEBUG = Setting(
    "CONFIDE_DEBUG",
    None,
    "Set to 1 to print the details (a traceback) of an error in Confide itself, for a bug "
    "report. Unset: a command names only the kind of failure.",
)
HUB_MAX_SHRINK = Setting(
    "CONFIDE_HUB_MAX_SHRINK",
    "0.2",
    "The largest share (0 to 1) of a source's current patients or rows that one submission may "
    "remove before the hub refuses it; an operator confirms a larger one with `hub ingest "
    "--confirm-shrink`.",
)

NOTIFY_API_KEY = Setting(
    "CONFIDE_NOTIFY_API_KEY",
    None,
    "A GOV.UK Notify API key: when set (with the four template ids), a served app sends "
    "one-time codes and change notices through Notify. Unset outside the demo: codes are "
    "withheld, never written in plain text.",
)
NOTIFY_CODE_EMAIL_TEMPLATE = Setting(
    "CONFIDE_NOTIFY_CODE_EMAIL_TEMPLATE", None, "Notify template id for a one-time code by email."
)
NOTIFY_CODE_SMS_TEMPLATE = Setting(
    "CONFIDE_NOTIFY_CODE_SMS_TEMPLATE", None, "Notify template id for a one-time code by text."
)
NOTIFY_CHANGE_EMAIL_TEMPLATE = Setting(
    "CONFIDE_NOTIFY_CHANGE_EMAIL_TEMPLATE",
    None,
    "Notify template id for the notice, by email, that a person's choices changed.",
)
NOTIFY_CHANGE_SMS_TEMPLATE = Setting(
    "CONFIDE_NOTIFY_CHANGE_SMS_TEMPLATE",
    None,
    "Notify template id for the notice, by text, that a person's choices changed.",
)
NOTIFY_URL = Setting(
    "CONFIDE_NOTIFY_URL",
    "https://api.notifications.service.gov.uk",
    "GOV.UK Notify's API address (a test double's address in integration tests).",
)

SERVICE_MAX_BODY_MB = Setting(
    "CONFIDE_SERVICE_MAX_BODY_MB",
    "128",
    "With the parties as services, the largest request body a service reads, in MB (a larger "
    "one is refused before it is read). Raise it for very large submissions.",
)
SERVICE_PARTY = Setting(
    "CONFIDE_SERVICE_PARTY",
    None,
    "Set by `confide service run` in its own process: the party served there (kept local; the "
    "others are reached as services). Not for operators to set.",
)
SERVICE_PEERS = Setting(
    "CONFIDE_SERVICE_PEERS",
    None,
    "Set by `confide up` for each child: where every party's service listens. Not for "
    "operators to set.",
)

SETTINGS: tuple[Setting, ...] = (
    HOME,
    DATABASE_URL,
    DATABASE_SCHEMA_PREFIX,
    LEDGER_ORIGIN,
    WITNESS_NAME,
    GP_TOKEN,
    ACCESS_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    DEBUG,
    HUB_MAX_SHRINK,
    NOTIFY_API_KEY,
    NOTIFY_CODE_EMAIL_TEMPLATE,
    NOTIFY_CODE_SMS_TEMPLATE,
    NOTIFY_CHANGE_EMAIL_TEMPLATE,
    NOTIFY_CHANGE_SMS_TEMPLATE,
    NOTIFY_URL,
    SERVICE_MAX_BODY_MB,
    SERVICE_PARTY,
    SERVICE_PEERS,
)
_BY_NAME = {s.name: s for s in SETTINGS}


def value(name: str) -> str | None:
    """The setting's value from the environment (empty counts as unset), else its default."""
    setting = _BY_NAME[name]  # a KeyError here means a setting used but not declared
    given = os.environ.get(setting.name)
    return given if given else setting.default


BEGIN = "<!-- settings: generated by python -m confide.common.settings; do not edit -->"
END = "<!-- end of settings -->"


def render() -> str:
    """The settings table for docs/operators.md (between the BEGIN and END markers)."""
    rows = [
        f"| `{s.name}` | {f'`{s.default}`' if s.default else '(unset)'} | {s.help} |"
        for s in SETTINGS
    ]
    return "\n".join([BEGIN, "| setting | default | what it does |", "|---|---|---|", *rows, END])


if __name__ == "__main__":
    print(render())
