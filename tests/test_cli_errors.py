"""The one error handler, through the real ``confide`` process: no traceback, ever.

Every command runs against a read-only copy of a demo home; each must either work (reading
is allowed) or say what went wrong and what to do, with an exit code from the table, and
``--json`` must give a JSON error. OS errors, usage errors and unanticipated exceptions take
the same path, checked here class by class.
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
from pathlib import Path

import pytest
import typer.main
from cli_subprocess import read_only, run_confide
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.cli import failures
from confide.cli.main import app
from confide.cli.reference import _walk
from confide.common import exit_codes
from confide.common.errors import ConfideError

NHS = "9434765919"  # a valid test number (modulus 11), known to no demo record
LONG_RUNNING = {("serve",), ("witness", "serve")}


def _leaves() -> list[tuple[tuple[str, ...], object]]:
    root = typer.main.get_command(app)
    return [
        (tuple(path[1:]), command)
        for path, command in _walk(root, ["confide"])
        if not hasattr(command, "list_commands")
    ]


LEAVES = _leaves()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """A small demo installation (built once per worker), with inputs for file arguments."""
    root = tmp_path_factory.mktemp("ro")
    home = root / "home"
    made = run_confide(
        ["demo", "--home", str(home), "--patients", "300", "--no-serve", "--json"], timeout=600
    )
    assert made.returncode == 0, made.stderr
    (home / "numbers.csv").write_text(f"{NHS},\n")
    (home / "choices.csv").write_text(f"{NHS},no_research,online,2026-01-02\n")
    (home / "left.csv").write_text("person_id,first_name\n1,a\n")
    return home


def _value(name: str, home: Path) -> str:
    """A plausible value for a required option or argument of any command."""
    outbox = sorted(home.glob("practice/*/outbox/*"))
    exports = sorted(p for p in (home / "area").iterdir() if p.is_dir())
    values = {
        "nhs_number": NHS,
        "channel": "online",
        "purpose": "research",
        "recipient": "academic",
        "kind": "practice",
        "key": "00" * 32,
        "ods": "A81001",
        "source": "A81001",
        "token": "not-a-token",
        "reason": "checking",
        "org": "demo",
        "email": "someone@example.org",
        "name": "someone",
        "role": "applicant",
        "title": "A title",
        "legal_basis": "public_task",
        "dataset": "patients:*",
        "from_": "2020-01-01",
        "date_from": "2020-01-01",
        "to": "2020-12-31",
        "date_to": "2020-12-31",
        "expires": "2030-01-01",
        "client_id": "client",
        "client_secret": "secret",
        "reference": "LPA-1",
        "reviewer": "reviewer",
        "project": "demo-research",
        "origin": "example.org/log",
        "out": str(home / "out"),
        "slug": "demo-research",
        "file": str(home / "numbers.csv"),
        "submissions": str(outbox[0]),
        "export": str(exports[0]),
        "left": str(home / "left.csv"),
        "right": str(home / "left.csv"),
        "item": "1",
        "query_id": "1",
    }
    return values.get(name, "x")


def _command_line(path: tuple[str, ...], command, home: Path) -> list[str]:
    args = [*path]
    for param in command.params:
        if not param.required:
            continue
        if param.param_type_name == "argument":
            args.append(_value(param.name, home))
        elif getattr(param, "is_flag", False):
            args.append(param.opts[0])
        else:
            args += [param.opts[0], _value(param.name, home)]
    names = {o for p in command.params for o in getattr(p, "opts", [])}
    if "--home" in names:
        args += ["--home", str(home)]
    if "--json" in names:
        args.append("--json")
    if "--port" in names:
        args += ["--port", "0"]
    return args


def _assert_reported(result: subprocess.CompletedProcess[str], json_asked: bool) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode in exit_codes.BY_CODE, (result.returncode, output)
    assert result.returncode != exit_codes.BUG, output
    if result.returncode:
        assert "Error:" in result.stderr and "What to do:" in result.stderr, output
        if json_asked:
            doc = json.loads(result.stdout.strip().splitlines()[-1])
            assert doc["exit_code"] == result.returncode and doc["error"]


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(path) for path, _ in LEAVES])
def test_every_command_on_a_read_only_home(path, command, demo_home) -> None:
    args = _command_line(path, command, demo_home)
    with read_only(demo_home) as prefix:
        try:
            result = run_confide(args, prefix=prefix, timeout=20 if path in LONG_RUNNING else 180)
        except subprocess.TimeoutExpired as stopped:
            # A server that started on a read-only home serves what it can: still no traceback.
            assert path in LONG_RUNNING
            seen = (stopped.stdout or b"") + (stopped.stderr or b"")
            assert b"Traceback" not in (seen if isinstance(seen, bytes) else seen.encode())
            return
    _assert_reported(result, "--json" in args)


def test_the_issue_commands_say_the_home_is_read_only(demo_home) -> None:
    with read_only(demo_home) as prefix:
        changed = run_confide(
            [
                "choices",
                "set",
                "--nhs-number",
                NHS,
                "--no-research",
                "--channel",
                "online",
                "--home",
                str(demo_home),
            ],
            prefix=prefix,
        )
    assert changed.returncode == exit_codes.FILES, changed.stderr
    said = " ".join(changed.stderr.split())
    assert "read-only" in said or "Permission denied" in said
    assert NHS not in changed.stderr + changed.stdout


def test_usage_errors_are_json_under_json(tmp_path) -> None:
    result = run_confide(["choices", "show", "--json", "--no-such-option"])
    assert result.returncode == exit_codes.BAD_REQUEST
    doc = json.loads(result.stdout)
    assert doc["kind"] == "bad_request" and "--no-such-option" in doc["error"]
    assert "confide choices show --help" in doc["hint"]
    assert "Traceback" not in result.stderr and "Error:" in result.stderr


def test_an_unknown_command_is_a_usage_error() -> None:
    result = run_confide(["no-such-command"])
    assert result.returncode == exit_codes.BAD_REQUEST
    assert "No such command" in result.stderr and "What to do:" in result.stderr


def test_hub_status_on_a_missing_home_says_so_and_creates_nothing(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    result = run_confide(["hub", "status", "--home", str(missing), "--json"])
    assert result.returncode == exit_codes.NOT_FOUND
    assert str(missing) in json.loads(result.stdout)["error"]
    assert not missing.exists()


def test_a_file_where_a_folder_is_expected(tmp_path) -> None:
    a_file = tmp_path / "export.csv"
    a_file.write_text("x\n")
    extract = run_confide(
        ["practice", "extract", str(a_file), "--home", str(tmp_path / "h"), "--json"]
    )
    assert extract.returncode == exit_codes.BAD_REQUEST
    error = json.loads(extract.stdout)["error"]
    assert "is a file" in error and str(a_file) in error
    home_file = tmp_path / "home-file"
    home_file.write_text("")
    status = run_confide(["hub", "status", "--home", str(home_file), "--json"])
    assert status.returncode == exit_codes.NOT_FOUND
    assert "is a file" in json.loads(status.stdout)["error"]


def test_a_file_in_the_way_of_an_output_folder(tmp_path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = run_confide(["synth", "--out", str(blocker / "area"), "--patients", "50", "--json"])
    assert result.returncode == exit_codes.FILES, result.stderr
    assert str(blocker) in json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert "Traceback" not in result.stderr and "What to do:" in result.stderr


# The handler itself, class by class.


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/srv/home/x"), "read-only disk"),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/home/x"), "Permission denied"),
        (FileNotFoundError(errno.ENOENT, "No such file", "/srv/home/x"), "does not exist"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/srv/home/x"), "is a file"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/srv/home/x"), "is a folder"),
        (OSError(errno.ENOSPC, "No space left", "/srv/home/x"), "full"),
    ],
)
def test_os_errors_name_the_full_path_and_what_to_do(exc, words) -> None:
    failure = failures.describe(exc)
    assert failure.code == exit_codes.FILES
    assert words in failure.message and "/srv/home/x" in failure.message
    assert failure.hint


def test_store_errors_about_files_are_file_errors() -> None:
    import sqlite3

    failure = failures.describe(sqlite3.OperationalError("attempt to write a readonly database"))
    assert failure.code == exit_codes.FILES and "read-only" in failure.message


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_an_unanticipated_exception_never_shows_its_message(secret) -> None:
    """Its message might hold an identifier: only the class is named."""
    failure = failures.describe(RuntimeError(f"patient {secret}"))
    assert failure.code == exit_codes.BUG
    assert f"patient {secret}" not in failure.message and "RuntimeError" in failure.message


def test_every_failure_has_a_hint_and_a_code_in_the_table() -> None:
    for exc in (ValueError("x"), KeyboardInterrupt(), MemoryError(), OSError("odd")):
        failure = failures.describe(exc)
        assert failure.code in exit_codes.BY_CODE and failure.hint


# The table: each exit code one meaning, every error class in it.


def _all_error_classes() -> list[type[ConfideError]]:
    import importlib
    import pkgutil

    import confide

    for info in pkgutil.walk_packages(confide.__path__, "confide."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # optional engines (e.g. Spark) may be absent
            continue
    seen: list[type[ConfideError]] = []
    todo = [ConfideError]
    while todo:
        kind = todo.pop()
        seen.append(kind)
        todo.extend(kind.__subclasses__())
    return seen


def test_each_exit_code_has_one_meaning() -> None:
    codes = [e.code for e in exit_codes.TABLE]
    names = [e.name for e in exit_codes.TABLE]
    meanings = [e.meaning for e in exit_codes.TABLE]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)
    assert len(set(meanings)) == len(meanings)


def test_every_error_class_exits_with_a_code_from_the_table() -> None:
    for kind in _all_error_classes():
        assert kind.exit_code in exit_codes.BY_CODE, kind
        assert kind.exit_code not in (exit_codes.OK, exit_codes.BUG), kind


def test_no_command_exits_with_a_bare_number() -> None:
    """Exit codes come from the table by name, so one number cannot grow a second meaning."""
    source = Path(__file__).parents[1] / "src" / "confide"
    bare = re.compile(r"(typer\.Exit|SystemExit|sys\.exit)\(\s*[1-9]")
    found = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if bare.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_errors_page_is_generated_from_the_table() -> None:
    from confide.cli.errors_doc import render

    page = Path(__file__).parents[1] / "docs" / "errors.md"
    assert page.read_text(encoding="utf-8") == render(), (
        "docs/errors.md is stale: run `python -m confide.cli.errors_doc > docs/errors.md`"
    )
