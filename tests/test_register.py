"""The public release register: built from the log alone, each row proved by its log index."""

from __future__ import annotations

import csv
import io
import json

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from release_helpers import apply_project, release_body
from typer.testing import CliRunner

from confide.common.errors import InvalidInput
from confide.common.home import Home
from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.ledger import register as reg
from confide.ledger.entries import decode
from confide.ledger.log import Ledger
from confide.ledger.register_cli import add_commands


@pytest.fixture
def ledger(tmp_path):
    with Ledger.open(Home.at(tmp_path)) as log:
        yield log


def _fill(ledger: Ledger) -> dict[str, int]:
    """A small history: projects, queries, releases, a refusal and a deletion notice."""
    at = {}
    apply_project(ledger, "P-0001", "Diabetes outcomes after COVID-19")
    ledger.append("project_approved", {"project_id": "P-0001", "approved_by": "ig_board"})
    apply_project(ledger, "P-0002", "Winter pressures", purpose="planning", legal_basis="copi_reg3")
    at["R-1"] = ledger.append("release", release_body("R-1", 120, date="2025-01-10"))
    ledger.append(
        "refusal", {"subject": "release", "ref": "R-X", "reason": "cells under 8 remained"}
    )
    at["R-2"] = ledger.append(
        "release",
        release_body(
            "R-2",
            4500,
            project_id="P-0002",
            organisation="NHS England",
            purpose="planning",
            recipient_kind="nhs",
            legal_basis="copi_reg3",
            data_form="dp",
            opt_outs_applied=False,
            opt_outs_reason="COPI regulation 3 (national opt-out policy 2018)",
            date="2025-02-03",
        ),
    )
    at["R-3"] = ledger.append(
        "release", release_body("R-3", 35, data_form="extract", date="2025-01-20")
    )
    at["notice"] = ledger.append(
        "deletion_notice",
        {
            "notice_id": "N-1",
            "project_id": "P-0001",
            "organisation": "University of Leeds",
            "release_ids": ["R-1", "R-3"],
        },
    )
    return at


def test_one_row_per_release_with_the_index_that_proves_it(ledger) -> None:
    at = _fill(ledger)
    head = ledger.checkpoint()
    rows = reg.register_rows(ledger, head.size)
    assert [r.release_id for r in rows] == ["R-1", "R-2", "R-3"]
    assert [r.index for r in rows] == [at["R-1"], at["R-2"], at["R-3"]]
    verified = cp.verify(head.text, ledger.verifier)
    for row in rows:
        (index, leaf_input) = ledger.entries(row.index, row.index + 1)[0]
        entry = decode(index, leaf_input)
        assert entry.kind == "release" and entry.body["release_id"] == row.release_id
        assert row.leaf_hash == merkle.leaf_hash(leaf_input).hex()
        # The proof anyone can ask the log for, by the row's leaf hash.
        found, path = ledger.inclusion_proof(bytes.fromhex(row.leaf_hash), head.size)
        assert found == row.index
        merkle.verify_inclusion(found, head.size, bytes.fromhex(row.leaf_hash), path, verified.root)

    r1, r2, _ = rows
    assert r1.project_title == "Diabetes outcomes after COVID-19"
    assert (r1.opt_outs_applied, r1.opt_outs_reason) == (True, None)
    assert (r2.organisation, r2.data_form, r2.patients) == ("NHS England", "dp", 4500)
    assert (r2.opt_outs_applied, r2.opt_outs_reason) == (
        False,
        "COPI regulation 3 (national opt-out policy 2018)",
    )
    assert r1.deletion_notices == (at["notice"],) and r2.deletion_notices == ()


def test_the_register_is_a_function_of_the_entries_only(ledger) -> None:
    _fill(ledger)
    size = ledger.head().size
    served = ledger.entries(0, size)  # what GET /api/ledger/entries serves
    assert reg.rows_from_entries(served) == reg.register_rows(ledger, size)
    # A register read at an earlier checkpoint shows only what that checkpoint covers.
    assert [r.release_id for r in reg.register_rows(ledger, 5)] == ["R-1"]


def test_filters_and_sorting(ledger) -> None:
    _fill(ledger)
    rows = reg.register_rows(ledger, ledger.head().size)

    def ids(**kw) -> list[str]:
        sort = kw.pop("sort", "index")
        desc = kw.pop("descending", False)
        return [r.release_id for r in reg.select_rows(rows, reg.RegisterFilter(**kw), sort, desc)]

    assert ids(organisation="leeds") == ["R-1", "R-3"]
    assert ids(opt_outs_applied=False) == ["R-2"]
    assert ids(data_form="EXTRACT") == ["R-3"]
    assert ids(purpose="planning", legal_basis="copi_reg3") == ["R-2"]
    assert ids(dataset="gp_patients") == ["R-1", "R-2", "R-3"]
    assert ids(date_from="2025-01-15", date_to="2025-01-31") == ["R-3"]
    assert ids(sort="date") == ["R-1", "R-3", "R-2"]
    assert ids(sort="patients", descending=True) == ["R-2", "R-1", "R-3"]
    with pytest.raises(InvalidInput, match="sorted by"):
        reg.select_rows(rows, sort="datasets")
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        reg.select_rows(rows, reg.RegisterFilter(date_from="01/02/2025"))


def test_csv_json_and_html_renderings(ledger) -> None:
    _fill(ledger)
    ledger.append(
        "release",
        release_body(
            "R-4", 10, organisation="=HYPERLINK(1) <script>alert(1)</script>", date="2025-03-01"
        ),
    )
    head = ledger.checkpoint()
    rows = reg.register_rows(ledger, head.size)

    table = list(csv.DictReader(io.StringIO(reg.to_csv(rows))))
    assert [t["release_id"] for t in table] == ["R-1", "R-2", "R-3", "R-4"]
    assert [int(t["log_index"]) for t in table] == [r.index for r in rows]
    assert table[1]["opt_outs_applied"] == "no" and table[0]["opt_outs_applied"] == "yes"
    assert table[0]["datasets"] == "gp_events;gp_patients"
    assert table[3]["organisation"].startswith("'=")  # never run as a spreadsheet formula

    doc = json.loads(reg.to_json(rows, head))
    assert doc["checkpoint"]["size"] == head.size
    assert doc["checkpoint"]["root"] == head.root.hex()
    assert [d["index"] for d in doc["releases"]] == [r.index for r in rows]
    assert doc["releases"][1]["opt_outs_reason"].startswith("COPI")

    page = reg.to_html(rows, head)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "no: because\nCOPI regulation 3" in page
    assert head.root.hex() in page
    with pytest.raises(InvalidInput, match="format"):
        reg.render(rows, "xlsx")


def test_an_empty_log_gives_an_empty_register(ledger) -> None:
    head = ledger.checkpoint()
    rows = reg.register_rows(ledger, head.size)
    assert rows == []
    assert list(csv.reader(io.StringIO(reg.to_csv(rows)))) == [list(reg.CSV_HEADER)]
    assert "0 releases" in reg.to_html(rows, head)


def test_the_register_command(tmp_path) -> None:
    with Ledger.open(Home.at(tmp_path)) as ledger:
        _fill(ledger)
    app, ledger_app = typer.Typer(), typer.Typer()
    add_commands(ledger_app)
    app.add_typer(ledger_app, name="ledger")
    runner = CliRunner()
    home = ["--home", str(tmp_path)]

    out = runner.invoke(app, ["ledger", "register", "--format", "json", *home])
    assert out.exit_code == 0, out.output
    assert [r["release_id"] for r in json.loads(out.stdout)["releases"]] == ["R-1", "R-2", "R-3"]

    out = runner.invoke(
        app, ["ledger", "register", "--format", "csv", "--opt-outs-not-applied", *home]
    )
    assert out.exit_code == 0, out.output
    assert [r["release_id"] for r in csv.DictReader(io.StringIO(out.stdout))] == ["R-2"]

    target = tmp_path / "register.html"
    out = runner.invoke(
        app, ["ledger", "register", "--format", "html", "--sort", "date", "-o", str(target), *home]
    )
    assert out.exit_code == 0, out.output
    assert target.read_text().index("R-1") < target.read_text().index("R-3")

    out = runner.invoke(app, ["ledger", "register", "--format", "pdf", *home])
    assert out.exit_code == 2


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["release", "query_run", "project_applied"]),
            st.integers(0, 5000),
            st.booleans(),
        ),
        max_size=20,
    )
)
def test_every_release_and_nothing_else_makes_a_row(kinds) -> None:
    from confide.common import canonical

    raw = []
    for i, (kind, patients, applied) in enumerate(kinds):
        if kind == "release":
            body = release_body(f"R-{i}", patients, opt_outs_applied=applied)
        elif kind == "query_run":
            body = {
                "project_id": "P-1",
                "query_id": f"Q-{i}",
                "query_digest": "ab" * 32,
                "mode": "rounding",
            }
        else:
            body = {
                "project_id": f"P-{i}",
                "organisation": "Org",
                "title": "T",
                "purpose": "research",
                "recipient_kind": "nhs",
                "legal_basis": "public_task",
                "datasets": [],
            }
        raw.append(
            (i, canonical.dumps({"kind": kind, "v": 1, "at": "2025-01-01T00:00:00Z", "body": body}))
        )
    rows = reg.rows_from_entries(raw)
    expected = [(i, p, a) for i, (k, p, a) in enumerate(kinds) if k == "release"]
    assert [(r.index, r.patients, r.opt_outs_applied) for r in rows] == expected
    assert all(r.leaf_hash == merkle.leaf_hash(raw[r.index][1]).hex() for r in rows)
