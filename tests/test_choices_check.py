"""``confide choices check``: the national check-file format in, the cleaned list out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from operators import add_operator
from typer.testing import CliRunner

from confide.choices.check import MALFORMED, check_file, clean, opted_out_for
from confide.choices.model import ChangeRequest, Choices
from confide.choices.policy import decide
from confide.choices.registry import ChoicesRegistry
from confide.cli.main import app
from confide.common import exit_codes
from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers

RNG = np.random.default_rng(11)


def _buf(text: bytes) -> np.ndarray:
    return np.frombuffer(text, dtype=np.uint8)


def _clean(text: bytes, opted: list[int] | None = None):
    out = io.BytesIO()
    summary, bad = clean(_buf(text), np.array(sorted(opted or []), dtype=np.int64), out)
    return out.getvalue(), summary, bad


def test_fast_path_keeps_format_and_drops_opted_out() -> None:
    numbers = list(generate_test_numbers(1_000, RNG))
    text = "".join(f"{n},\n" for n in numbers).encode()
    out, summary, bad = _clean(text, [int(n) for n in numbers[::3]])
    expected = "".join(f"{n},\n" for i, n in enumerate(numbers) if i % 3).encode()
    assert out == expected and not bad
    assert (summary.lines, summary.included, summary.excluded) == (1000, 666, 334)


def test_invalid_and_malformed_lines_are_reported_never_returned() -> None:
    good = generate_test_numbers(3, RNG)
    lines = [
        f"{good[0]},",  # 1 ok
        "9434765918,",  # 2 fails mod 11
        "",  # 3 blank: skipped
        f"{good[1]}",  # 4 no comma
        "943 476 5919,",  # 5 spaces
        "94347659AB,",  # 6 letters
        f"{good[2]},\r",  # 7 CRLF is fine
        "12345,",  # 8 too short
        f"{good[0]},",  # 9 duplicates are kept as given
        "9434765919",  # 10 last line, no comma, no newline
    ]
    out, summary, bad = _clean("\n".join(lines).encode())
    assert out == f"{good[0]},\n{good[2]},\n{good[0]},\n".encode()
    assert [n for n, _ in bad] == [2, 4, 5, 6, 8, 10]
    reasons = dict(bad)
    assert "modulus 11" in reasons[2] and "digits" in reasons[6]
    assert reasons[4] == reasons[5] == reasons[8] == reasons[10] == MALFORMED
    assert (summary.invalid, summary.malformed, summary.blank, summary.included) == (2, 4, 1, 3)
    assert not any(str(g) in r for g in good for _, r in bad)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    out = io.BytesIO()
    assert check_file(path, np.empty(0, np.int64), out, io.StringIO()).lines == 0
    assert out.getvalue() == b""


@pytest.fixture
def populated(opstore, tmp_path: Path):
    home = tmp_path / "home"
    registry = ChoicesRegistry.open(Home.at(home))
    numbers = [str(n) for n in generate_test_numbers(400, RNG)]
    held = {
        "share_nothing": numbers[0:40],
        "no_research": numbers[40:120],
        "no_planning": numbers[100:160],
        "no_commercial": numbers[150:220],
    }
    registry.bulk_set(
        ChangeRequest(n, {choice: True}, "letter") for choice, ns in held.items() for n in ns
    )
    registry.set(numbers[45], {"no_research": False}, "letter")  # changed their mind
    yield registry, numbers, home
    registry.close()


@pytest.mark.parametrize(
    ("purpose", "recipient", "basis", "form", "preset"),
    [
        ("research", "academic", "section_251", "record_level", "strict"),
        ("research", "commercial", "section_251", "aggregate", "strict"),
        ("planning", "nhs", "public_task", "record_level", "strict"),
        ("research", "academic", "section_251", "aggregate", "ndoo_2018"),
        ("public_health", "nhs", "copi_reg3", "record_level", "ndoo_2018"),
    ],
)
def test_check_matches_the_policy_person_by_person(
    populated, purpose, recipient, basis, form, preset
):
    registry, numbers, _home = populated
    opted, _terms = opted_out_for(registry, purpose, recipient, basis, form, preset)
    out, _summary, bad = _clean("".join(f"{n},\n" for n in numbers).encode(), list(opted))
    kept = out.decode().splitlines()
    current = registry.current_many(numbers)
    expected = [
        f"{n},"
        for n in numbers
        if decide(current[n], purpose, recipient, basis, form, preset).include
    ]
    assert kept == expected and not bad
    assert len(kept) < len(numbers) or preset == "ndoo_2018"


def test_refused_purposes_cannot_be_checked(populated) -> None:
    registry, _numbers, _home = populated
    with pytest.raises(InvalidInput, match="insurance is never"):
        opted_out_for(registry, "insurance", "commercial")


def test_cli_check_stdout_and_stderr(populated, tmp_path: Path) -> None:
    _registry, numbers, home = populated
    path = tmp_path / "list.txt"
    path.write_text("".join(f"{n},\n" for n in numbers[30:60]) + "9434765918,\nnonsense\n")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "choices",
            "check",
            str(path),
            "--purpose",
            "research",
            "--recipient",
            "academic",
            "--home",
            str(home),
            "--json",
        ],
    )
    assert result.exit_code == exit_codes.INVALID_LINES, result.output
    stdout = result.stdout
    # shares nothing (30-39) and no_research (40-59, except 45 who changed their mind) go.
    assert stdout == f"{numbers[45]},\n"
    assert "line 31: NHS number fails the modulus 11 check" in result.stderr
    assert "line 32: not in the check format" in result.stderr
    summary = next(json.loads(line) for line in result.stderr.splitlines() if line.startswith("{"))
    assert summary["included"] == 1 and summary["invalid"] == 1 and summary["malformed"] == 1


def test_cli_set_show_history_and_errors(opstore, tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "h")]
    ok = runner.invoke(
        app,
        [
            "choices",
            "set",
            "--nhs-number",
            "9434765919",
            "--no-research",
            "--no-commercial",
            "--channel",
            "letter",
            "--json",
            *home,
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["choices"]["no_research"] is True
    cleared = runner.invoke(
        app,
        [
            "choices",
            "set",
            "--nhs-number",
            "9434765919",
            "--clear",
            "no-research",
            "--channel",
            "phone",
            *home,
        ],
    )
    # Another channel's fact is not undone: the letter still holds, and the person is told.
    assert cleared.exit_code == 0, cleared.output
    assert "no_research is still held through letter" in cleared.stdout
    cleared = runner.invoke(
        app,
        [
            "choices",
            "set",
            "--nhs-number",
            "9434765919",
            "--clear",
            "no-research",
            "--channel",
            "letter",
            "--json",
            *home,
        ],
    )
    assert json.loads(cleared.stdout)["choices"] == Choices(no_commercial=True).as_dict()
    operator = add_operator(tmp_path / "h")
    history = runner.invoke(
        app, ["choices", "history", "--nhs-number", "9434765919", "--json", *operator, *home]
    )
    assert len(json.loads(history.stdout)["history"]) == 3
    bad = runner.invoke(
        app,
        [
            "choices",
            "set",
            "--nhs-number",
            "9434765918",
            "--no-research",
            "--channel",
            "letter",
            *home,
        ],
    )
    assert bad.exit_code == 2 and "modulus 11" in bad.stderr and "9434765918" not in bad.stderr
    unknown = runner.invoke(
        app,
        [
            "choices",
            "set",
            "--nhs-number",
            "9434765919",
            "--clear",
            "no_spam",
            "--channel",
            "letter",
            *home,
        ],
    )
    assert unknown.exit_code == 2 and "Unknown choice" in unknown.stderr
    adult = runner.invoke(
        app,
        [
            "choices",
            "set",
            "--nhs-number",
            "9434765919",
            "--share-nothing",
            "--channel",
            "proxy",
            "--actor",
            "parent",
            "--child-birth-date",
            "1990-01-01",
            *home,
        ],
    )
    assert adult.exit_code == 2 and "13 or older" in " ".join(adult.stderr.split())
    show = runner.invoke(
        app, ["choices", "show", "--nhs-number", "9434765919", "--json", *operator, *home]
    )
    assert json.loads(show.stdout)["choices"] == Choices(no_commercial=True).as_dict()


def test_crlf_input_gives_crlf_output_and_spaces_are_tolerated() -> None:
    good = generate_test_numbers(3, RNG)
    text = f"{good[0]},\r\n {good[1]} , \r\n\t{good[2]},\r\n".encode()
    out, summary, bad = _clean(text)
    assert out == "".join(f"{n},\r\n" for n in good).encode()
    assert not bad and summary.included == 3


def test_crlf_fast_path_matches_the_slow_path() -> None:
    numbers = list(generate_test_numbers(500, RNG))
    crlf = "".join(f"{n},\r\n" for n in numbers).encode()
    opted = [int(n) for n in numbers[::7]]
    fast, _s, _b = _clean(crlf, opted)
    slow, _s, _b = _clean(crlf + b"\r\n", opted)  # a trailing blank line: the slow path
    assert fast == slow and fast.count(b"\r\n") == 500 - len(opted)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(list(generate_test_numbers(50, np.random.default_rng(3)))), max_size=30
    ),
    st.lists(st.sampled_from(["", " ", "\t", "  "]), min_size=3, max_size=3),
    st.sampled_from(["\n", "\r\n"]),
)
def test_spacing_and_endings_never_change_the_answer(numbers, pads, ending) -> None:
    """Whatever the spacing and line ending, the clean list is the same numbers, in order,
    in the input's line ending."""
    before, middle, after = pads
    text = "".join(f"{before}{n}{middle},{after}{ending}" for n in numbers).encode()
    out, summary, bad = _clean(text)
    assert out == "".join(f"{n},{ending}" for n in numbers).encode()
    assert not bad and summary.included == len(numbers)


def _check(home: Path, path: Path, *extra: str):
    return CliRunner().invoke(
        app,
        ["choices", "check", str(path), "--purpose", "research", "--recipient", "academic",
         "--home", str(home), *extra],
    )  # fmt: skip


def test_all_or_nothing_returns_no_list_when_any_line_is_invalid(populated, tmp_path) -> None:
    _registry, numbers, home = populated
    path = tmp_path / "list.txt"
    path.write_text(f"{numbers[300]},\n9434765918,\n")
    result = _check(home, path, "--all-or-nothing")
    assert result.exit_code == exit_codes.INVALID_LINES
    assert result.stdout == "" and "invalid NHS numbers" in " ".join(result.stderr.split())
    assert "9434765918" not in result.stderr
    out = tmp_path / "clean.txt"
    to_file = _check(home, path, "--all-or-nothing", "--out", str(out))
    assert to_file.exit_code == exit_codes.INVALID_LINES and not out.exists()
    assert list(tmp_path.glob(".clean.txt*")) == []  # no partial file left behind
    path.write_text(f"{numbers[300]},\r\n{numbers[301]},\r\n")
    whole = _check(home, path, "--all-or-nothing", "--out", str(out))
    assert whole.exit_code == 0, whole.output
    assert out.read_bytes() == f"{numbers[300]},\r\n{numbers[301]},\r\n".encode()


def test_without_all_or_nothing_the_valid_lines_come_back_with_the_exit_code(
    populated, tmp_path
) -> None:
    _registry, numbers, home = populated
    path = tmp_path / "list.txt"
    path.write_text(f"{numbers[300]},\nnot a number\n")
    result = _check(home, path)
    assert result.exit_code == exit_codes.INVALID_LINES
    assert result.stdout == f"{numbers[300]},\n"
    assert "line 2: not in the check format" in result.stderr and "What to do:" in result.stderr
    clean_file = tmp_path / "list.txt"
    clean_file.write_text(f"{numbers[300]},\n")
    assert _check(home, clean_file).exit_code == 0
