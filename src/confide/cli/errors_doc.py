"""docs/errors.md, generated from the exit-code table so the page cannot drift from the code.

``python -m confide.cli.errors_doc > docs/errors.md`` rewrites it; a test fails when it is stale.
"""

from __future__ import annotations

from confide.common.exit_codes import TABLE

INTRO = """\
# Errors and exit codes

Generated from the code (`python -m confide.cli.errors_doc`); a test fails when this page is
out of date.

Every `confide` command reports a problem the same way, whatever went wrong:

- on **standard error**, `Error:` with what went wrong (full paths, never an NHS number, name,
  date of birth or postcode) and `What to do:` with the next step;
- with `--json`, also one JSON object on **standard output**, usage errors included:
  `{"error": "...", "hint": "...", "exit_code": 2, "kind": "bad_request"}`;
- an **exit code** from the table below, each with one meaning.

No command ever prints a traceback. If Confide itself goes wrong (exit code 1), the message
names only the kind of failure; set `CONFIDE_DEBUG=1` and run the command again to see the
details for a bug report.

| code | kind | meaning | what to do |
|---|---|---|---|
"""


def render() -> str:
    rows = [
        f"| {e.code} | `{e.name}` | {e.meaning} | {e.what_to_do} |".replace("\n", " ")
        for e in TABLE
    ]
    return INTRO + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
