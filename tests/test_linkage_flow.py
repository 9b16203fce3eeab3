"""Linkage through the whole flow: exports, the practice agent, the hub, the commands, the web.

A synthetic area (CSV) whose trusts arrive before one of its practices: the trusts' records of
that practice's people without a usable NHS number wait; when the practice arrives, they link,
and the hub adds their rows to the record store. Checked against the area's answer key
(``truth.parquet``), which only the test reads.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from confide.cli.main import app
from confide.common import nhs_number
from confide.common.home import Home
from confide.demo.pipeline import source_folders
from confide.embedded import Installation
from confide.practice import keys as practice_keys
from confide.practice.agent import extract
from confide.synth import generate, truth

runner = CliRunner()


def _ingest(parties: Installation, folder: Path, meta: dict) -> dict:
    parties.hub.enrol(
        meta["ods"], meta["kind"], practice_keys.verify_key(parties.home, meta["ods"])
    )
    made = extract(folder, parties.home, parties.pseudonymiser.public_key())
    return parties.hub.ingest(made.path).as_dict()


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("linkage-flow")
    area = root / "area"
    generate(area, patients=3000, seed=61, fmt="csv", practices=3)
    sources = source_folders(area)
    practices = [s for s in sources if s[1]["kind"] == "practice"]
    trusts = [s for s in sources if s[1]["kind"] == "trust"]
    late = min(practices, key=lambda s: sum(1 for _ in (s[0] / "patients.csv").open()))
    home = root / "home"
    results = {}
    with Installation.open(Home.at(home)) as parties:
        for folder, meta in [*(p for p in practices if p is not late), *trusts, late]:
            results[meta["ods"]] = _ingest(parties, folder, meta)
    return {"area": area, "home": home, "late": late[1]["ods"], "results": results}


def _waiting_records(flow: dict) -> list[dict]:
    """Trust records of the late practice's people whose NHS number cannot be used."""
    answer = truth.read(flow["area"]).to_pylist()
    late_people = {r["person"] for r in answer if r["source"] == flow["late"]}
    by_id = {(r["source"], r["patient_id"]): r for r in answer}
    found = []
    for path in flow["area"].glob("R*/patients.csv"):
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                key = (path.parent.name, row["patient_id"])
                if by_id[key]["person"] in late_people and not nhs_number.is_valid(
                    row["nhs_number"]
                ):
                    found.append({**by_id[key], "source": path.parent.name})
    return found


def test_records_linked_later_reach_the_record_store(flow) -> None:
    waiting = _waiting_records(flow)
    assert waiting, "the area should have such records"
    readmitted = flow["results"][flow["late"]].get("readmitted", {})
    assert readmitted.get("records", 0) >= 0.8 * len(waiting)
    with Installation.open(Home.at(flow["home"])) as parties:
        pseudonyms = parties.pseudonymiser.pseudonyms_for([r["nhs_number"] for r in waiting])
        con = parties.hub.records.connect()
        stored = set(con.execute("SELECT pseudonym, source FROM patient_sources").fetchall())
        weights = con.execute(
            "SELECT linked_by, count(*), min(match_weight) FROM patient_sources "
            "WHERE linked_by IN ('probabilistic', 'later_record') GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        episodes = con.execute(
            "SELECT count(*) FROM hospital_episodes h JOIN patient_sources p "
            "ON p.pseudonym = h.pseudonym AND p.source = h.source "
            "WHERE p.linked_by = 'later_record'"
        ).fetchone()[0]
        catalog = parties.hub.records.catalog()
    found = sum((p, r["source"]) in stored for p, r in zip(pseudonyms, waiting, strict=True))
    assert found >= 0.8 * len(waiting)
    assert [w[0] for w in weights] == ["later_record", "probabilistic"]
    assert all(w[2] > 0 for w in weights)
    assert episodes > 0 and catalog["resolutions_applied"] > 0
    # Applying again changes nothing.
    with Installation.open(Home.at(flow["home"])) as parties:
        assert parties.hub.readmit() == {"records": 0, "rows": 0}
        assert parties.hub.records.catalog()["version"] == catalog["version"]


def test_operators_see_quality_per_source(flow) -> None:
    result = runner.invoke(
        app, ["pseudonymiser", "linkage", "quality", "--home", str(flow["home"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    sources = {s["source"]: s for s in json.loads(result.stdout)["sources"]}
    trusts = [sources[p.parent.name] for p in flow["area"].glob("R*/patients.csv")]
    assert trusts and all(s["linkage_rate"] > 0.95 for s in trusts)
    assert sum(s["linked_later"] for s in trusts) > 0
    assert all(s["estimated_false_match_rate"] < 0.01 for s in trusts)
    human = runner.invoke(app, ["pseudonymiser", "linkage", "quality", "--home", str(flow["home"])])
    assert human.exit_code == 0 and "est. FMR" in human.stdout


def test_the_model_command_shows_the_learned_weights(flow) -> None:
    result = runner.invoke(
        app, ["pseudonymiser", "linkage", "model", "--home", str(flow["home"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["trained"] and body["link_probability"] == 0.999
    exact = next(lv for lv in body["levels"] if lv["level"] == "Exact match on nhs_number")
    assert exact["weight"] > 10


def _possible_matches(flow: dict) -> dict[str, dict]:
    """Records of real patients of the area with errors that leave the model between sure and
    unsure (several kinds, so that some land in the review band whatever the trained weights);
    sent to the pseudonymiser. Returns each patient's row by their NHS number."""
    import pyarrow as pa
    from linkage_world import identities, swappable, unsure_variants

    from confide.common.sealing import seal_table

    path = next(flow["area"].glob("B*/patients.csv"))
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if swappable(r["birth_date"])][:6]
    columns = ("patient_id", "nhs_number", "birth_date", "sex", "postcode")
    crafted = [{c: v[c] for c in columns} for r in rows for v in unsure_variants(r)]
    with Installation.open(Home.at(flow["home"])) as parties:
        key = parties.pseudonymiser.public_key()
        batch = seal_table(identities(pa.Table.from_pylist(crafted)), key)
        parties.pseudonymiser.pseudonymise_submission("RXX", "s-crafted", [batch])
    return {r["nhs_number"]: r for r in rows}


def test_the_review_queue_shows_identifiers_only_to_reviewers_and_decides(flow) -> None:
    home = str(flow["home"])
    people = _possible_matches(flow)
    listed = runner.invoke(app, ["pseudonymiser", "review", "list", "--limit", "10000",
                                 "--home", home, "--json"])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    items = [i for i in json.loads(listed.stdout)["items"] if i["source"] == "RXX"]
    assert len(items) >= 2
    for item in items:
        # Reviewers see both records' identifiers side by side, and only possible matches.
        person = people[item["candidate_nhs_number"]]
        assert item["candidate_birth_date"] == person["birth_date"]
        assert item["record_birth_date"] and 0.5 <= item["probability"] < 0.999
    human = runner.invoke(app, ["pseudonymiser", "review", "list", "--limit", "10000",
                                "--home", home])  # fmt: skip
    assert human.exit_code == 0 and items[0]["candidate_nhs_number"] in human.stdout
    bad = runner.invoke(app, ["pseudonymiser", "review", "decide", "999999", "--match",
                              "--reviewer", "ann", "--home", home])  # fmt: skip
    assert bad.exit_code == 3 and "no review item" in bad.output
    unsure = runner.invoke(app, ["pseudonymiser", "review", "decide", "1", "--reviewer", "ann",
                                 "--home", home])  # fmt: skip
    assert unsure.exit_code == 2 and "--match or --not-a-match" in unsure.output
    first, second = sorted(items, key=lambda i: i["id"])[:2]
    for item, choice in ((first, "--match"), (second, "--not-a-match")):
        decided = runner.invoke(app, ["pseudonymiser", "review", "decide", str(item["id"]),
                                      choice, "--reviewer", "ann", "--home", home,
                                      "--json"])  # fmt: skip
        assert decided.exit_code == 0, decided.output
    with Installation.open(Home.at(flow["home"])) as parties:
        resolved = parties.pseudonymiser.resolutions(0).to_pylist()
        left = {i["id"] for i in parties.pseudonymiser.review_items(10_000)}
    mine = [(r["pseudonym"], r["linked_by"]) for r in resolved if r["source"] == "RXX"]
    assert (first["candidate"], "review") in mine
    assert (
        not [p for p, _ in mine if p == second["candidate"]]
        or second["candidate"] == first["candidate"]
    )
    assert first["id"] not in left and second["id"] not in left


def test_the_demo_summary_and_the_transparency_page_show_linkage_quality(flow, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from confide.web.cli import installation_app

    with Installation.open(Home.at(flow["home"])) as parties:
        page = TestClient(installation_app(parties, demo=False)).get("/transparency")
    assert page.status_code == 200
    assert "How well records are linked" in page.text
    for code in (p.parent.name for p in flow["area"].glob("R*/patients.csv")):
        assert code in page.text

    result = runner.invoke(app, ["demo", "--home", str(tmp_path), "--from", str(flow["area"]),
                                 "--no-serve", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    linkage = {q["source"]: q for q in json.loads(result.stdout)["linkage"]}
    trusts = [q for code, q in linkage.items() if code.startswith("R")]
    assert trusts and all(q["probabilistic"] > 0 for q in trusts)
    assert all(0 <= q["estimated_false_match_rate"] < 0.01 for q in trusts)


def test_resolutions_are_counts_and_pseudonyms_only(flow) -> None:
    with Installation.open(Home.at(flow["home"])) as parties:
        resolved = parties.pseudonymiser.resolutions(0)
    assert resolved.num_rows > 0
    assert set(resolved.column_names) >= {"seq", "ref", "pseudonym", "match_weight"}
    assert "nhs_number" not in resolved.column_names and "postcode" not in resolved.column_names
    assert pc.all(pc.is_valid(resolved.column("pseudonym"))).as_py()


def _people_file(flow: dict, tmp_path: Path) -> Path:
    """Every practice's patients in one CSV (the people to link to)."""
    out = tmp_path / "people.csv"
    rows = []
    for path in sorted(flow["area"].glob("B*/patients.csv")):
        with path.open(newline="") as fh:
            rows += [{**r, "patient_id": f"{path.parent.name}-{r['patient_id']}"}
                     for r in csv.DictReader(fh)]  # fmt: skip
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_confide_link_writes_weighted_pairs_that_match_the_answer_key(flow, tmp_path) -> None:
    people = _people_file(flow, tmp_path)
    trust = next(flow["area"].glob("R*/patients.csv"))
    out = tmp_path / "pairs.csv"
    result = runner.invoke(app, ["link", str(trust), str(people), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    with out.open(newline="") as fh:
        pairs = list(csv.DictReader(fh))
    assert list(pairs[0]) == ["left_id", "right_id", "match_weight", "match_probability", "band"]
    answer = truth.read(flow["area"]).to_pylist()
    person = {(r["source"], r["patient_id"]): r["person"] for r in answer}
    source = trust.parent.name
    right = wrong = 0
    for pair in pairs:
        if pair["band"] != "link":
            continue
        practice, patient = pair["right_id"].split("-", 1)
        same = person[(source, pair["left_id"])] == person[(practice, patient)]
        right, wrong = right + same, wrong + (not same)
    registered = sum(1 for r in answer if r["source"] == source and r["registered"])
    assert wrong <= 0.001 * (right + wrong) and right >= 0.98 * registered
    assert summary["linked"] == right + wrong and summary["pairs_written"] == len(pairs)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nhs_number,birth_date\n9434765919,1980-01-01\n", "no patient_id column"),
        ("patient_id,birth_date\n1,1980-01-01\n1,1981-01-01\n", "missing or repeated"),
    ],
)
def test_confide_link_refuses_files_it_cannot_use(tmp_path, content, message) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    good = tmp_path / "good.csv"
    good.write_text("patient_id,birth_date\n1,1980-01-01\n")
    result = runner.invoke(app, ["link", str(bad), str(good), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "o.csv").exists()


def test_confide_link_says_what_is_wrong_with_paths(tmp_path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("patient_id,birth_date\n1,1980-01-01\n")
    missing = runner.invoke(app, ["link", str(tmp_path / "nope.csv"), str(good), "--out",
                                  str(tmp_path / "o.csv")])  # fmt: skip
    assert missing.exit_code == 2 and "is not a file" in " ".join(missing.output.split())
    folder = runner.invoke(app, ["link", str(good), str(good), "--out", str(tmp_path)])
    assert folder.exit_code == 2 and "is a folder" in " ".join(folder.output.split())
