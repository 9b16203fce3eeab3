"""CSV exports: canonical tables, rejections with line numbers and exact bytes, bad headers."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.common.errors import InvalidInput
from confide.practice.readers import csv_lines, read_export, read_source

PATIENTS_HEADER = (
    "patient_id,nhs_number,title,given_name,family_name,birth_date,sex,address_line,postcode,"
    "phone,date_of_death\n"
)
EVENTS_HEADER = "patient_id,date,kind,system,code,term,value,unit,note\n"


def export(tmp_path: Path, **files: bytes | str) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    for name, body in files.items():
        data = body.encode() if isinstance(body, str) else body
        (folder / f"{name}.csv").write_bytes(data)
    return folder


def test_reads_every_table_and_drops_free_text(tmp_path: Path):
    folder = export(
        tmp_path,
        patients=PATIENTS_HEADER
        + 'p1,9990000018,Mr,Al,Smith,1970-01-02,male,"1 Road, Town",LS1 1AA,0113,\n'
        + "p2,9990000026,,,,1980-02-03,female,,LS2 2BB,,2023-04-05\n",
        registrations="patient_id,practice_ods,start_date,end_date\np1,B82001,2001-01-01,\n",
        events=EVENTS_HEADER
        + 'p1,2020-01-01,observation,snomed,1049301000000100,"HbA1c, blood",48,mmol/mol,"a\nnote"\n'
        + "p2,2021-02-02,condition,read2,9Nu0,Dissent,,,\n",
        medications="patient_id,date,system,code,term,dosage_text,quantity,quantity_unit\n"
        "p1,2022-03-03,dmd,39732411000001106,Amoxicillin,one daily,21,capsule\n",
        episodes="patient_id,episode_id,admission_date,discharge_date,admission_method,"
        "diagnoses,procedures\np2,S1,2022-01-01,2022-01-04,21,I21.0; E11.9,\n",
    )
    result = read_source(folder, source="B82001")
    ex = result.extract
    assert result.format == "csv" and ex.kind == "trust" and ex.rejected == []
    assert ex.table("patients").to_pylist()[1] == {
        "local_id": "p2",
        "nhs_number": "9990000026",
        "birth_date": "1980-02-03",
        "postcode": "LS2 2BB",
        "sex": "female",
        "death_date": date(2023, 4, 5),
    }
    assert ex.table("registrations").to_pylist() == [
        {"local_id": "p1", "practice": "B82001", "start_date": date(2001, 1, 1), "end_date": None}
    ]
    events = ex.table("events").to_pylist()
    assert events[0]["value"] == 48.0 and events[0]["unit"] == "mmol/mol"
    assert (events[1]["system"], events[1]["code"]) == ("read2", "9Nu0")
    assert ex.table("medications").to_pylist()[0]["quantity"] == 21.0
    episode = ex.table("episodes").to_pylist()[0]
    assert episode["diagnoses"] == ["I21.0", "E11.9"] and episode["procedures"] == []
    for name, table in ex.tables.items():
        assert table.schema == ex.table(name).schema
        flat = str(table.to_pylist())
        for free_text in ("Smith", "Road", "HbA1c", "note", "one daily", "Amoxicillin", "0113"):
            assert free_text not in flat


def test_bad_rows_become_rejections_with_line_and_bytes(tmp_path: Path):
    lines = [
        EVENTS_HEADER,
        'p1,2020-01-01,observation,snomed,1,"multi\nline term",5,u,\n',  # lines 2-3
        "p1,2020-13-01,condition,snomed,1,,,,\n",  # 4: bad date
        "p1,2020-01-01,observation,snomed,1,,abc,,\n",  # 5: not a number
        ",2020-01-01,condition,snomed,1,,,,\n",  # 6: no patient
        "p1,2020-01-01,condition\n",  # 7: too few columns
        "\n",  # 8: blank, skipped
        "p1,2020-01-01,condition,snomed,1,,,,,extra\n",  # 9: too many
        "p2,2020-01-01,condition,snomed,\xff,,,,\n",  # 10: placeholder for bad UTF-8
        "p3,2020-01-02,condition,snomed,2,,,,\n",  # 11: fine
        "p4,2020-01-0",  # 12: cut short, no newline
    ]
    body = "".join(lines).encode().replace("\xff".encode(), b"\xff\xfe")
    folder = export(tmp_path, patients=PATIENTS_HEADER, events=body)
    ex = read_export(folder, source="B82001")
    got = [(r.location, r.reason.split(" (")[0]) for r in ex.rejected]
    assert got == [
        ("line 4", "date is not a date"),
        ("line 5", "value is not a number"),
        ("line 6", "patient_id is missing"),
        ("line 7", "the row has fewer columns than the header"),
        ("line 9", "the row has more columns than the header"),
        ("line 10", "the row is not valid UTF-8 text"),
        ("line 12", "the row has fewer columns than the header"),
    ]
    raw = body.split(b"\n")
    assert ex.rejected[0].original == raw[3] + b"\n"
    assert ex.rejected[5].original == raw[9] + b"\n"
    assert ex.rejected[-1].original == b"p4,2020-01-0"
    assert [e["local_id"] for e in ex.table("events").to_pylist()] == ["p1", "p3"]


def test_missing_columns_name_the_file_and_columns(tmp_path: Path):
    folder = export(tmp_path, patients=PATIENTS_HEADER, events="patient_id,date,code\n")
    with pytest.raises(InvalidInput) as info:
        read_export(folder, source="B82001")
    assert "events.csv" in info.value.message
    assert "kind" in info.value.message and "value" in info.value.message


def test_empty_and_duplicate_headers(tmp_path: Path):
    with pytest.raises(InvalidInput, match="empty"):
        read_export(export(tmp_path, patients=""), source="B82001")
    folder = tmp_path / "dupe"
    folder.mkdir()
    (folder / "patients.csv").write_text("patient_id,patient_id\n")
    with pytest.raises(InvalidInput, match="more than once"):
        read_export(folder, source="B82001")


def test_columns_may_come_in_any_order_with_extras(tmp_path: Path):
    folder = export(
        tmp_path,
        patients="sex,extra,postcode,birth_date,nhs_number,patient_id,date_of_death\n"
        "male,x,LS1,1970-01-01,9990000018,p1,\n",
    )
    [row] = read_export(folder, source="B82001").table("patients").to_pylist()
    assert (row["local_id"], row["sex"], row["postcode"]) == ("p1", "male", "LS1")


# --- the record locator, against Python's csv module ------------------------------------

cell = st.text(alphabet=st.sampled_from(list('ab ,"\n\r1')), max_size=6)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(cell, min_size=2, max_size=2), min_size=1, max_size=25),
       blanks=st.sets(st.integers(0, 25)), chunk=st.integers(1, 40))  # fmt: skip
def test_record_locator_matches_csv_module(tmp_path_factory, rows, blanks, chunk):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["a", "b"])
    expected = []  # (physical line, bytes) per data record
    line = 2
    for i, row in enumerate(rows):
        if i in blanks:
            buf.write("\n")
            line += 1
        before = buf.tell()
        writer.writerow(row)
        text = buf.getvalue()[before:]
        if text.strip("\r\n") == "":
            line += text.count("\n")
            continue  # an all-empty row is a blank line to a CSV reader
        expected.append((line, text.encode()))
        line += text.count("\n")
    path = tmp_path_factory.mktemp("loc") / "f.csv"
    path.write_bytes(buf.getvalue().encode())
    old = csv_lines.CHUNK
    csv_lines.CHUNK = chunk
    try:
        _, found = csv_lines.find_records(path, set(), set(range(len(expected))))
    finally:
        csv_lines.CHUNK = old
    assert [(found[i].line, found[i].original) for i in range(len(expected))] == expected
