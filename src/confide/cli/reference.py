"""The CLI reference (docs/cli.md), generated from the command tree so it cannot drift.

``python -m confide.cli.reference > docs/cli.md`` rewrites it; a test fails when it is stale.
"""

from __future__ import annotations

from typing import Any

import typer.main

from confide.cli.main import app


def _walk(command: Any, path: list[str], parent: Any = None):
    """Every command, loading lazily registered ones (``list_commands``/``get_command``)."""
    yield path, command
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command, info_name=path[-1], parent=parent)
        for name in sorted(command.list_commands(ctx)):
            yield from _walk(command.get_command(ctx, name), [*path, name], ctx)


def _option_line(param: Any) -> str:
    if param.param_type_name == "argument":
        required = " (required)" if param.required else ""
        return f"| `{param.name.upper()}` | argument{required} | |"
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    help_text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
    default = param.default
    shown = (
        "" if default in (None, False, (), []) or callable(default) else f" (default: {default})"
    )
    return f"| {names} | {'required' if param.required else 'option'}{shown} | {help_text} |"


def render() -> str:
    root = typer.main.get_command(app)
    out = [
        "# Command line reference",
        "",
        "Generated from the commands themselves (`python -m confide.cli.reference`);",
        "a test fails when this file is out of date.",
        "",
    ]
    for path, command in _walk(root, ["confide"]):
        if command.hidden:
            continue
        out.append(f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`")
        out.append("")
        if command.help:
            out.append(command.help.strip().split("\n\n")[0].replace("\n", " "))
            out.append("")
        params = [p for p in command.params if p.name != "help"]
        if params and not hasattr(command, "list_commands"):
            out.append("| name | kind | meaning |")
            out.append("|---|---|---|")
            out.extend(_option_line(p) for p in params)
            out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
