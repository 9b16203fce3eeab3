"""Faithful extracts: statuses honoured, identities kept apart, codes and values intact, and
every input resource accounted for, at the practice and through to the hub's store."""

from __future__ import annotations

import json
import random
import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_helpers import hub_rows, make_world

from confide.common.codes import PREFERRED_URI
from confide.practice.minimise import minimise
from confide.practice.model import EXTRACT_SCHEMAS, Extract, conform
from confide.practice.readers import read_source
from confide.practice.readers.status import DROPPED, KEPT, NOT_EVENT, PRESENT, RULES, rules_table
from confide.practice.type1 import type1_states

ROOT = Path(__file__).resolve().parent.parent
SNOMED = PREFERRED_URI["snomed"]
CODE = "26322001"
DMD_UNDER_SNOMED = "39720311000001101"
PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9912003888"}],
    "birthDate": "1970-09-11",
    "gender": "male",
}


def concept(code: str = CODE, system: str = SNOMED) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def status_concept(code: str) -> dict:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/x", "code": code}]}


def resource(rtype: str, **extra: object) -> dict:
    """A minimal, otherwise usable resource of each type the practice agent reads."""
    subject = {"reference": "Patient/pat-1"}
    base: dict = {
        "Condition": {"subject": subject, "code": concept(), "onsetDateTime": "2020-01-02"},
        "Observation": {
            "subject": subject,
            "code": concept(),
            "effectiveDateTime": "2020-01-02",
        },
        "Procedure": {"subject": subject, "code": concept(), "performedDateTime": "2020-01-02"},
        "MedicationRequest": {
            "subject": subject,
            "medicationCodeableConcept": concept(DMD_UNDER_SNOMED),
            "authoredOn": "2020-01-02",
        },
        "MedicationStatement": {
            "subject": subject,
            "medicationCodeableConcept": concept(DMD_UNDER_SNOMED),
            "effectiveDateTime": "2020-01-02",
        },
        "Encounter": {
            "subject": subject,
            "class": {"code": "IMP"},
            "period": {"start": "2020-01-02"},
        },
        "EpisodeOfCare": {
            "patient": subject,
            "managingOrganization": {
                "identifier": {
                    "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                    "value": "B82001",
                }
            },
            "period": {"start": "2020-01-02"},
        },
        "AllergyIntolerance": {"patient": subject, "code": concept(), "recordedDate": "2020-01-02"},
        "Immunization": {
            "patient": subject,
            "vaccineCode": concept(DMD_UNDER_SNOMED),
            "occurrenceDateTime": "2020-01-02",
        },
    }[rtype]
    return {"resourceType": rtype, "id": f"{rtype}-{random.randrange(10**9)}", **base, **extra}


def read(tmp_path: Path, resources: list[dict], name: str = "export"):
    folder = tmp_path / name
    folder.mkdir()
    lines = [json.dumps(r) for r in [PATIENT, *resources]]
    (folder / "data.ndjson").write_text("\n".join(lines) + "\n")
    return read_source(folder, source="B82001")


def _with(rule_element: str, value: str) -> object:
    if rule_element in ("clinicalStatus", "verificationStatus"):
        return status_concept(value)
    if rule_element == "type":
        return [status_concept("hacc")]
    return value


# --- 1. status rules -------------------------------------------------------------------------

CASES = [(r.resource, r.element, v, r.outcome) for r in RULES for v in r.values]


@pytest.mark.parametrize(("rtype", "element", "value", "outcome"), CASES)
def test_every_status_rule_does_what_the_table_says(
    tmp_path: Path, rtype: str, element: str, value: str, outcome: str
) -> None:
    res = resource(rtype, **{element: _with(element, value)})
    result = read(tmp_path, [res])
    accounts = result.extract.accounts[rtype]
    assert accounts == {outcome: 1}
    mine = [r for r in result.extract.rejected if r.resource_type == rtype]
    if outcome == KEPT:
        assert mine == []
    else:
        [rejection] = mine
        assert rejection.outcome == outcome
        shown = "is given" if value == PRESENT else f"is {value}"
        assert f"{rtype}.{element} {shown}" in rejection.reason
        assert json.loads(rejection.original)["id"] == res["id"]


def test_entered_in_error_wins_over_not_an_event(tmp_path: Path) -> None:
    res = resource(
        "Condition",
        verificationStatus=status_concept("refuted"),
        clinicalStatus=status_concept("entered-in-error"),
    )
    [rejection] = [r for r in read(tmp_path, [res]).extract.rejected]
    assert rejection.outcome == DROPPED


def test_a_resource_without_status_is_kept(tmp_path: Path) -> None:
    result = read(tmp_path, [resource(t) for t in ("Condition", "Observation", "Procedure")])
    assert result.extract.table("events").num_rows == 3


def test_the_rule_table_in_the_docs_is_generated_from_the_code() -> None:
    text = (ROOT / "docs" / "practices.md").read_text()
    match = re.search(r"<!-- status-rules:start -->\n(.*?)\n<!-- status-rules:end -->", text, re.S)
    assert match, "docs/practices.md has no status-rules block"
    assert match.group(1) == rules_table()
    outcomes = {r.outcome for r in RULES}
    assert outcomes == {KEPT, DROPPED, NOT_EVENT}


# --- 2. identity hygiene --------------------------------------------------------------------


def _people(rows: list[tuple[str, str, str, str]]) -> Extract:
    patients = pa.table(
        {
            "local_id": [r[0] for r in rows],
            "nhs_number": [r[1] for r in rows],
            "birth_date": [r[2] for r in rows],
            "postcode": ["LS1 1AA"] * len(rows),
            "sex": [r[3] for r in rows],
            "death_date": pa.nulls(len(rows), pa.date32()),
        }
    )
    events = conform(
        pa.table(
            {
                "local_id": [r[0] for r in rows],
                "kind": ["condition"] * len(rows),
                "system": ["snomed"] * len(rows),
                "code": [CODE] * len(rows),
                "date": [date(2020, 1, 2)] * len(rows),
            }
        ),
        EXTRACT_SCHEMAS["events"],
    )
    patients = conform(patients, EXTRACT_SCHEMAS["patients"])
    return Extract("B82001", "practice", {"patients": patients, "events": events})


ROWS = [
    ("a", "9990000018", "1970-01-01", "male"),
    ("b", "9990000026", "1980-01-01", "female"),  # shares a number with c, different birth
    ("c", "9990000026", "1981-02-02", "female"),
    ("d", "9990000034", "1990-01-01", "male"),  # one local id for two people
    ("d", "9990000042", "1991-01-01", "female"),
    ("e", "9990000050", "1960-01-01", "male"),  # the same record twice: one person
    ("e", "9990000050", "1960-01-01", "male"),
    ("f", "9990000069", "1950-01-01", "female"),  # same number, same person, two records
    ("g", "999 000 0069", "1950-01-01", "female"),
]


def _minimised(rows):
    extract = _people(rows)
    return minimise(extract, type1_states(extract.table("events")))


def test_conflicting_identities_quarantine_all_their_records() -> None:
    result = _minimised(ROWS)
    reasons = {r.location: r.reason for r in result.rejected if r.file == "patients"}
    assert set(reasons) == {"patient b", "patient c", "patient d"}
    assert "NHS number is shared by 2 patient records" in reasons["patient b"]
    assert "same patient id is used for 2 different people" in reasons["patient d"]
    for reason in reasons.values():
        assert not re.search(r"\d{6,}|19\d\d-", reason)  # no identifier in a reason
    kept = sorted(result.identities.column("nhs_number").to_pylist())
    assert kept == ["999 000 0069", "9990000018", "9990000050", "9990000069"]
    # The events of every quarantined record are rejected too, with the same reason.
    event_rejects = sorted(r.location for r in result.rejected if r.file == "events")
    assert event_rejects == ["patient b", "patient c", "patient d", "patient d"]
    assert result.accounts["patients"] == {
        "merged: exact repeat": 1,
        "rejected": 4,
        "submitted": 4,
    }
    assert result.accounts["events"] == {"rejected": 4, "submitted": 5}


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_outcome_does_not_depend_on_the_order_of_the_export(rnd) -> None:
    shuffled = list(ROWS)
    rnd.shuffle(shuffled)
    baseline, again = _minimised(ROWS), _minimised(shuffled)
    key = [(r.file, r.location, r.reason, r.original) for r in baseline.rejected]
    assert [(r.file, r.location, r.reason, r.original) for r in again.rejected] == key
    assert sorted(again.identities.column("nhs_number").to_pylist()) == sorted(
        baseline.identities.column("nhs_number").to_pylist()
    )


@pytest.fixture
def world(tmp_path):
    w = make_world(tmp_path / "home")
    yield w
    w.close()


def test_two_people_sharing_a_placeholder_number_are_never_merged(world) -> None:
    """Same sex and birth date, so the practice cannot tell them apart: the pseudonymiser
    refuses the number and holds both records rather than give them one pseudonym."""
    rows = [
        ("x", "0000000000", "1970-01-01", "male"),
        ("y", "0000000000", "1970-01-01", "male"),
        ("z", "9990000018", "1955-03-04", "male"),
    ]
    result = world.hub.ingest(world.submit(_people(rows)))
    assert result.counts["patients"] == 1
    assert result.counts["unlinked"] == 2
    quarantine = world.hub.folder / "submissions" / result.submission_id / "quarantine.parquet"
    reasons = pq.read_table(quarantine).column("reason").to_pylist()
    assert sum("placeholder" in r for r in reasons) >= 2
    assert "0000000000" not in " ".join(reasons)


# --- 3 and 4. codes, values, allergies, immunisations, into the store -----------------------


def test_values_codes_and_new_resource_types_reach_the_store(world, tmp_path) -> None:
    resources = [
        resource(
            "Observation",
            code=concept("1005671000000105"),
            valueQuantity={
                "value": 60,
                "comparator": ">",
                "unit": "mL/min",
                "system": "http://unitsofmeasure.org",
                "code": "mL/min",
            },
        ),
        resource(
            "Observation", code=concept("229819007"), valueCodeableConcept=concept("77176002")
        ),
        resource("Condition", onsetDateTime="2019", recordedDate="2019-05-06"),
        resource("Condition", onsetDateTime="2019-03"),
        resource("AllergyIntolerance", code=concept("91936005")),
        resource("Immunization"),
        resource("MedicationRequest"),
    ]
    result = read(tmp_path, resources)
    [partial] = [r for r in result.extract.rejected if r.outcome == "rejected"]
    assert "partial date" in partial.reason
    extract = result.extract
    ingested = world.hub.ingest(world.submit(extract))
    assert ingested.counts["quarantined"] == 0
    con = world.hub.records.connect()
    events = con.execute(
        "SELECT kind, system, code, date, value, comparator, value_system, value_code "
        "FROM events ORDER BY kind, code"
    ).fetchall()
    assert events == [
        ("allergy", "snomed", "91936005", date(2020, 1, 2), None, None, None, None),
        ("condition", "snomed", CODE, date(2019, 5, 6), None, None, None, None),
        ("immunisation", "snomed", DMD_UNDER_SNOMED, date(2020, 1, 2), None, None, None, None),
        ("observation", "snomed", "1005671000000105", date(2020, 1, 2), 60.0, ">", None, None),
        ("observation", "snomed", "229819007", date(2020, 1, 2), None, None, "snomed", "77176002"),
    ]
    meds = hub_rows(world.hub, "medications")
    assert [(m[2], m[3]) for m in meds] == [("dmd", DMD_UNDER_SNOMED)]


def test_a_submission_from_an_older_agent_without_the_new_columns_is_read(world) -> None:
    from confide.practice import keys
    from confide.practice.writer import write_submission

    extract = _people([("a", "9990000018", "1970-01-01", "male")])
    world.hub.enrol("B82001", "practice", keys.verify_key(world.home, "B82001"))
    done = _minimised([("a", "9990000018", "1970-01-01", "male")])
    done.tables["events"] = done.tables["events"].drop_columns(
        ["comparator", "value_system", "value_code"]
    )
    _, path = write_submission(
        world.home.root / "outbox",
        ods=extract.source,
        kind=extract.kind,
        identities=done.identities,
        tables=done.tables,
        counts={},
        pseudonymiser_key=world.pseudonymiser.public_key(),
        signing_key=keys.signing_key(world.home, extract.source),
    )
    result = world.hub.ingest(path)
    assert result.counts["events"] == 1
    assert hub_rows(world.hub, "events")[0][-3:] == (None, None, None)


# --- 5. accounting ---------------------------------------------------------------------------


def _count_resources(folder: Path) -> dict[str, int]:
    """An independent count of the resources in an export (Bundles opened, not counted)."""
    from lxml import etree

    counts: dict[str, int] = {}

    def walk(res: object) -> None:
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            counts["(unreadable)"] = counts.get("(unreadable)", 0) + 1
            return
        if res["resourceType"] == "Bundle":
            for entry in res.get("entry") or []:
                if isinstance(entry, dict) and entry.get("resource") is not None:
                    walk(entry["resource"])
            return
        counts[res["resourceType"]] = counts.get(res["resourceType"], 0) + 1

    for path in sorted(folder.iterdir()):
        if path.suffix == ".ndjson":
            for line in path.read_text().splitlines():
                if line.strip():
                    walk(json.loads(line))
        elif path.suffix == ".json" and path.name != "source.json":
            walk(json.loads(path.read_bytes()))
        elif path.suffix == ".xml":
            root = etree.fromstring(path.read_bytes())
            tag = etree.QName(root).localname
            if tag == "Bundle":
                for res in root.iterfind(
                    "{http://hl7.org/fhir}entry/{http://hl7.org/fhir}resource"
                ):
                    inner = etree.QName(res[0]).localname
                    counts[inner] = counts.get(inner, 0) + 1
            else:
                counts[tag] = counts.get(tag, 0) + 1
    return counts


def fixture_exports() -> list[Path]:
    base = ROOT / "tests" / "fixtures"
    return sorted(p for p in base.iterdir() if p.is_dir())


@pytest.mark.parametrize("fixtures", fixture_exports(), ids=lambda p: p.name)
def test_every_input_resource_ends_in_exactly_one_place(fixtures: Path, tmp_path: Path) -> None:
    """On every fixture set, file by file and all together: per type, inputs = kept +
    rejected (whatever the outcome), and the rejected list holds exactly the non-kept."""
    import shutil

    files = sorted(p for p in fixtures.iterdir() if p.suffix in (".xml", ".json", ".ndjson"))
    assert files
    for path in files:
        folder = tmp_path / path.name
        folder.mkdir()
        shutil.copy(path, folder / path.name)
        _assert_accounted(folder)


def _assert_accounted(folder: Path) -> None:
    result = read_source(folder, source="B82001")
    accounts = result.extract.accounts
    expected = _count_resources(folder)
    assert {t: sum(by.values()) for t, by in accounts.items()} == expected, folder.name
    not_kept = sum(n for by in accounts.values() for o, n in by.items() if o != KEPT)
    assert not_kept == len(result.extract.rejected)
    assert all(r.reason for r in result.extract.rejected)
    data = result.extract
    done = minimise(data, type1_states(data.table("events")))
    for name, by in done.accounts.items():
        assert sum(by.values()) == data.table(name).num_rows, (folder.name, name)


@pytest.mark.parametrize("fixtures", fixture_exports(), ids=lambda p: p.name)
def test_every_fixture_set_read_as_one_export_is_accounted_for(
    fixtures: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "all"
    folder.mkdir()
    for path in fixtures.iterdir():
        if path.suffix in (".xml", ".json", ".ndjson"):
            shutil.copy(path, folder / path.name)
    _assert_accounted(folder)


STATUS_VALUES = [(r.resource, r.element, v) for r in RULES for v in r.values]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(STATUS_VALUES), max_size=25), st.integers(0, 3))
def test_accounting_holds_on_any_mixture(tmp_path_factory, picks, junk: int) -> None:
    tmp = tmp_path_factory.mktemp("mix")
    resources: list = [resource(t, **{e: _with(e, v)}) for t, e, v in picks]
    resources += [{"resourceType": "Practitioner", "id": f"pr{i}"} for i in range(junk)]
    result = read(tmp, resources)
    accounts = result.extract.accounts
    expected: dict[str, int] = {"Patient": 1}
    for t, _, _ in picks:
        expected[t] = expected.get(t, 0) + 1
    if junk:
        expected["Practitioner"] = junk
    assert {t: sum(by.values()) for t, by in accounts.items()} == expected
    not_kept = sum(n for by in accounts.values() for o, n in by.items() if o != KEPT)
    assert not_kept == len(result.extract.rejected)


def test_the_manifest_carries_the_accounts_and_the_clis_print_them(world, tmp_path) -> None:
    from typer.testing import CliRunner

    from confide.cli.main import app

    folder = tmp_path / "export"
    folder.mkdir()
    resources = [
        PATIENT,
        resource("Condition", verificationStatus=status_concept("refuted")),
        resource("Condition"),
        {"resourceType": "CarePlan", "id": "cp"},
    ]
    (folder / "data.ndjson").write_text("\n".join(json.dumps(r) for r in resources) + "\n")
    home = str(world.home.root)
    pub = world.pseudonymiser.public_key().hex()
    world.close()
    runner = CliRunner()
    made = runner.invoke(
        app,
        ["practice", "extract", str(folder), "--source", "B82001", "--home", home,
         "--pseudonymiser-key", pub, "--json"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    summary = json.loads(made.stdout)
    assert summary["by_resource"] == {
        "CarePlan": {"not used": 1},
        "Condition": {"kept": 1, "not an event": 1},
        "Patient": {"kept": 1},
    }
    manifest = json.loads((Path(summary["path"]) / "manifest.json").read_bytes())
    assert manifest["counts"]["by_resource"] == summary["by_resource"]
    human = runner.invoke(
        app,
        ["practice", "extract", str(folder), "--source", "B82001", "--home", home,
         "--pseudonymiser-key", pub],
    )  # fmt: skip
    assert human.exit_code == 0, human.output
    assert "Resources read at the practice" in human.output and "not an event" in human.output
