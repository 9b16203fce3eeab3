"""The synthetic area: reproducible, realistic, and in exactly the documented CSV format."""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from confide.cli.main import app
from confide.common import nhs_number, postcode
from confide.common.codes import TYPE1_DISSENT, TYPE1_WITHDRAWN, verhoeff_ok
from confide.common.errors import InvalidInput
from confide.synth import generate
from confide.synth.area import EXTRACT_DAY
from confide.synth.clinical import CONCEPTS, DRUGS
from confide.synth.codelists import CHRONIC_INDEX, all_snomed_codes
from confide.synth.generate import build_area
from confide.synth.hospital import IdentifierErrors
from confide.synth.population import NO_DATE
from confide.synth.tables import COLUMNS, practice_tables

DOCS = Path(__file__).resolve().parent.parent / "docs" / "formats.md"
DISSENT = next(c for s, c in TYPE1_DISSENT if s == "snomed")
WITHDRAWN = next(c for s, c in TYPE1_WITHDRAWN if s == "snomed")
EXTRACT = date(2026, 11, 1).isoformat()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def sources(area: Path, kind: str) -> list[Path]:
    return sorted(
        p.parent for p in area.glob("*/source.json") if orjson.loads(p.read_bytes())["kind"] == kind
    )


@pytest.fixture(scope="module")
def csv_area(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("csv") / "area"
    summary = generate(out, patients=1500, seed=7, fmt="csv", practices=3, trusts=2)
    return out, summary


@pytest.fixture(scope="module")
def big() -> object:
    """An in-memory area large enough for rates to be measured within a few points."""
    return build_area(20_000, seed=11, trusts=2)


# --- reproducibility ----------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("fmt", ["csv", "fhir"])
def test_the_same_seed_gives_byte_identical_files(tmp_path: Path, fmt: str) -> None:
    generate(tmp_path / "a", patients=300, seed=3, fmt=fmt, practices=2)
    generate(tmp_path / "b", patients=300, seed=3, fmt=fmt, practices=2)
    generate(tmp_path / "c", patients=300, seed=4, fmt=fmt, practices=2)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b
    assert a != c


def test_regenerating_into_the_same_folder_replaces_the_area(tmp_path: Path) -> None:
    generate(tmp_path / "a", patients=200, seed=1, fmt="csv", practices=3)
    generate(tmp_path / "a", patients=200, seed=2, fmt="csv", practices=1, trusts=0)
    assert len(list((tmp_path / "a").glob("*/source.json"))) == 1


# --- the CSV format -------------------------------------------------------------------------------


def test_csv_columns_are_exactly_those_in_the_docs(csv_area) -> None:
    documented = {
        m[1]: tuple(c.strip() for c in m[2].split(","))
        for m in re.finditer(r"^\| `(\w+)\.csv`[^|]*\| `([^`]+)` \|", DOCS.read_text(), re.M)
    }
    assert set(documented) == set(COLUMNS)
    assert documented == COLUMNS
    area, _ = csv_area
    for folder in sources(area, "practice") + sources(area, "trust"):
        for path in folder.glob("*.csv"):
            with path.open(encoding="utf-8") as handle:
                header = tuple(next(csv.reader(handle)))
            assert header == documented[path.stem], path


def test_source_json_and_area_json(csv_area) -> None:
    area, summary = csv_area
    kinds = [orjson.loads(p.read_bytes()) for p in sorted(area.glob("*/source.json"))]
    assert sorted(k["kind"] for k in kinds) == ["practice"] * 3 + ["trust"] * 2
    assert all(k["format"] == "csv" and k["extracted_at"].endswith("Z") for k in kinds)
    practices = [k["ods"] for k in kinds if k["kind"] == "practice"]
    assert all(re.fullmatch(r"[A-Z]\d{5}", ods) for ods in practices)
    trusts = [k["ods"] for k in kinds if k["kind"] == "trust"]
    assert trusts and all(re.fullmatch(r"R[A-Z0-9]{2}", ods) for ods in trusts)
    recorded = orjson.loads((area / "area.json").read_bytes())
    assert recorded["patients"] == summary["patients"] == 1500
    assert {"events", "medications", "episodes", "type1_dissent", "type1_withdrawn"} <= set(summary)


def test_gp_patients_have_valid_distinct_nhs_numbers_and_real_format_postcodes(csv_area) -> None:
    area, _ = csv_area
    rows = [r for f in sources(area, "practice") for r in read_csv(f / "patients.csv")]
    assert len(rows) == 1500
    numbers = [r["nhs_number"] for r in rows]
    assert len(set(numbers)) == len(numbers)
    assert all(nhs_number.is_valid(n) and n.startswith("99") for n in numbers)
    assert all(postcode.normalise(r["postcode"]) == r["postcode"] for r in rows)
    assert all(postcode.district(r["postcode"]).startswith("LS") for r in rows)
    assert {r["sex"] for r in rows} == {"male", "female"}
    assert all(r["given_name"] and r["family_name"] and r["address_line"] for r in rows)
    assert sum(bool(r["phone"]) for r in rows) > 1000


def test_every_snomed_and_dmd_code_passes_verhoeff(csv_area) -> None:
    assert all(verhoeff_ok(c) for c in all_snomed_codes())
    assert all(verhoeff_ok(c.code) for c in CONCEPTS)
    assert all(verhoeff_ok(d.code) for d in DRUGS)
    area, _ = csv_area
    for folder in sources(area, "practice"):
        for name in ("events", "medications"):
            rows = read_csv(folder / f"{name}.csv")
            assert rows
            assert {r["system"] for r in rows} <= {"snomed", "dmd"}
            assert all(verhoeff_ok(code) for code in {r["code"] for r in rows})


def test_registrations_and_deaths_hang_together(csv_area) -> None:
    area, _ = csv_area
    movers = 0
    for folder in sources(area, "practice"):
        people = {r["patient_id"]: r for r in read_csv(folder / "patients.csv")}
        regs: dict[str, list[dict]] = {}
        for r in read_csv(folder / "registrations.csv"):
            regs.setdefault(r["patient_id"], []).append(r)
        assert set(regs) == set(people)
        for pid, history in regs.items():
            movers += len(history) > 1
            assert history[-1]["practice_ods"] == folder.name
            for r in history:
                assert people[pid]["birth_date"] <= r["start_date"]
                assert not r["end_date"] or r["start_date"] <= r["end_date"]
            assert all(r["end_date"] for r in history[:-1])
            death = people[pid]["date_of_death"]
            if death:
                assert history[-1]["end_date"] == death
    assert 0.1 < movers / 1500 < 0.3


def test_events_fall_within_each_life_and_type1_withdrawals_follow_dissent(csv_area) -> None:
    area, summary = csv_area
    dissent = withdrawn = 0
    for folder in sources(area, "practice"):
        people = {r["patient_id"]: r for r in read_csv(folder / "patients.csv")}
        seen_dissent: dict[str, str] = {}
        for r in read_csv(folder / "events.csv"):
            person = people[r["patient_id"]]
            assert person["birth_date"] <= r["date"] <= (person["date_of_death"] or EXTRACT)
            assert r["kind"] in ("condition", "observation", "procedure", "allergy", "immunisation")
            if r["code"] == DISSENT:
                dissent += 1
                seen_dissent[r["patient_id"]] = r["date"]
            elif r["code"] == WITHDRAWN:
                withdrawn += 1
                assert r["date"] > seen_dissent[r["patient_id"]]
            if r["value"]:
                assert float(r["value"]) > 0 and r["unit"]
    assert (dissent, withdrawn) == (summary["type1_dissent"], summary["type1_withdrawn"])


def test_observations_carry_values_that_differ_with_diabetes(csv_area) -> None:
    area, _ = csv_area
    hba1c: dict[bool, list[float]] = {True: [], False: []}
    for folder in sources(area, "practice"):
        events = read_csv(folder / "events.csv")
        diabetic = {r["patient_id"] for r in events if r["code"] == "44054006"}
        for r in events:
            if r["code"] == "1049301000000100":
                assert r["unit"] == "mmol/mol"
                hba1c[r["patient_id"] in diabetic].append(float(r["value"]))
    assert np.mean(hba1c[True]) > np.mean(hba1c[False]) + 10


def test_hospital_episodes_use_icd10_and_opcs4(csv_area) -> None:
    from confide.common.codes import why_code_invalid

    area, summary = csv_area
    total = 0
    for folder in sources(area, "trust"):
        episodes = read_csv(folder / "episodes.csv")
        patients = {r["patient_id"] for r in read_csv(folder / "patients.csv")}
        total += len(episodes)
        for e in episodes:
            assert e["patient_id"] in patients
            assert e["admission_method"] in {"11", "12", "13", "21", "22", "23", "28", "81"}
            assert not e["discharge_date"] or e["admission_date"] <= e["discharge_date"]
            assert all(why_code_invalid("icd10", c) is None for c in e["diagnoses"].split(";"))
            for code in filter(None, e["procedures"].split(";")):
                assert why_code_invalid("opcs4", code) is None
    assert total == summary["episodes"] > 0


# --- realism, measured on a larger area held in memory -----------------------------------------


def test_age_pyramid_is_englands(big) -> None:
    age = big.pop.age_at(np.where(big.pop.death == NO_DATE, EXTRACT_DAY, big.pop.death))
    assert 0.17 < np.mean(age < 16) < 0.22  # England: about 19%
    assert 0.16 < np.mean(age >= 65) < 0.22  # about 19%
    assert 0.015 < np.mean(age >= 85) < 0.04
    old = age >= 85
    assert big.pop.female[old].mean() > big.pop.female[age < 50].mean() + 0.05
    died = big.pop.death != NO_DATE
    assert 0.03 < died.mean() < 0.09
    assert np.mean(age[died]) > np.mean(age) + 20


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [
        ("t2dm", 0.055, 0.085),
        ("htn", 0.12, 0.16),
        ("asthma", 0.05, 0.07),
        ("copd", 0.013, 0.028),
        ("depression", 0.085, 0.115),
    ],
)
def test_condition_prevalence_among_adults(big, key: str, low: float, high: float) -> None:
    adults = big.pop.age_at(big.pop.record_end) >= 18
    share = big.clinical.conditions[adults, CHRONIC_INDEX[key]].mean()
    assert low < share < high


def test_type1_share_and_events_per_patient(big) -> None:
    n = len(big.pop)
    assert 0.03 < big.clinical.type1_dissent / n < 0.04
    assert 0 < big.clinical.type1_withdrawn < 0.15 * big.clinical.type1_dissent
    per_patient = (len(big.clinical.events["day"]) + len(big.clinical.meds["day"])) / n
    assert 22 < per_patient < 40


def test_hospital_identifier_errors_come_at_the_configured_rates(big) -> None:
    people = big.people.fields
    missing = mistyped = swapped = typos = old = total = swappable = outsiders = 0
    for trust in big.trust_data:
        truth = people["nhs"][trust.person]
        total += len(truth)
        missing += int((trust.nhs == "").sum())
        present = trust.nhs != ""
        mistyped += int((trust.nhs[present] != truth[present]).sum())
        assert not nhs_number.valid_mask(trust.nhs[present & (trust.nhs != truth)]).any()
        dob = people["dob"][trust.person].astype("datetime64[D]")
        day = (dob - dob.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
        month = (dob.astype("datetime64[M]").astype(int) % 12) + 1
        swappable += int((day <= 12).sum())
        differs = trust.dob != people["dob"][trust.person]
        recorded = trust.dob.astype("datetime64[D]")
        same_year = recorded.astype("datetime64[Y]") == dob.astype("datetime64[Y]")
        rday = (recorded - recorded.astype("datetime64[M]").astype("datetime64[D]")).astype(int)
        rmonth = (recorded.astype("datetime64[M]").astype(int) % 12) + 1
        swap = differs & same_year & (rday + 1 == month) & (rmonth == day)
        swapped += int(swap.sum())
        typos += int((differs & ~swap).sum())
        # A typo changes one character of the date, never more.
        typed = differs & ~swap
        texts = zip(dob[typed].astype(str), recorded[typed].astype(str), strict=True)
        assert all(sum(a != b for a, b in zip(x, y, strict=True)) == 1 for x, y in texts)
        old += int((trust.postcode != people["postcode"][trust.person]).sum())
        outsiders += int((trust.person >= big.people.registered).sum())
    rates = IdentifierErrors()
    assert abs(missing / total - rates.missing_nhs) < 0.006
    assert abs(mistyped / total - rates.mistyped_nhs) < 0.005
    assert abs(old / total - rates.old_postcode) < 0.012
    assert 0.3 * rates.swapped_dob < swapped / swappable < 1.5 * rates.swapped_dob
    assert 0.5 * rates.mistyped_dob < typos / total < 1.5 * rates.mistyped_dob
    assert 0.01 < outsiders / total < 0.06
    assert 0.2 < total / len(big.pop) < 0.7


# --- invariants over many seeds and sizes ---------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), patients=st.integers(1, 60), practices=st.integers(1, 4))
def test_any_small_area_is_well_formed(seed: int, patients: int, practices: int) -> None:
    area = build_area(patients, seed, practices=practices, trusts=1)
    pop = area.pop
    assert len(set(pop.nhs.tolist())) == patients
    assert nhs_number.valid_mask(pop.nhs).all()
    assert (pop.record_start >= pop.dob).all()
    assert (pop.record_end >= pop.record_start).all()
    dead = pop.death != NO_DATE
    assert (pop.death[dead] >= pop.dob[dead]).all()
    seen = 0
    for k in range(practices):
        tables = practice_tables(area, k)
        seen += tables["patients"].num_rows
        for name, table in tables.items():
            assert tuple(table.column_names) == COLUMNS[name]
    assert seen == patients
    ev = area.clinical.events
    assert (ev["day"] >= pop.dob[ev["patient"]]).all()
    assert (ev["day"] <= pop.record_end[ev["patient"]]).all()


# --- errors and the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patients": 0}, "at least 1"),
        ({"fmt": "hl7v2"}, "Unknown format"),
        ({"practices": 0}, "--practices"),
        ({"trusts": -1}, "--trusts"),
    ],
)
def test_bad_arguments_are_refused_clearly(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"patients": 10, "seed": 1, "fmt": "csv", **kwargs}
    with pytest.raises(InvalidInput, match=message):
        generate(tmp_path / "out", **args)


def test_an_unusable_out_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is a file"):
        generate(tmp_path / "file", patients=5, fmt="csv")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        generate(tmp_path / "busy", patients=5, fmt="csv")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_cli_writes_an_area_and_reports_json(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["synth", "--out", str(tmp_path / "a"), "--patients", "120", "--seed", "5",
         "--format", "csv", "--practices", "2", "--trusts", "1", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["patients"] == 120 and summary["practices"] == 2 and summary["trusts"] == 1
    assert len(list((tmp_path / "a").glob("*/source.json"))) == 3


def test_cli_errors_exit_non_zero_without_a_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "a"), "--patients", "0"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "a"), "--format", "pdf"])
    assert result.exit_code == 2
