"""The view builders' shared SQL: written once in confide.tre.dialects, right on each engine.

The DuckDB checks run the SQL; the Spark rendering is checked as text here and run end to end
by the Spark engine tests.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from pathlib import Path

import duckdb
import pytest

from confide.tre import spark_views, views
from confide.tre.cellkey import BUCKET_COLUMNS, record_keys
from confide.tre.dialects import DUCKDB, SPARK, hmac_pads

# Text that only the per-person SQL and the HMAC contain: a builder holding any of it has its
# own copy instead of the dialect's.
SHARED_SQL_MARKERS = (
    "row_number",
    "PARTITION BY",
    "source_kind",
    "unhex(",
    "encode(pseudonym",
    "encode(m.",
    "encode(r.",
    "sha2(",
    "sha256(?",
    "sha256(k.",
    "'0x'",
    "conv(",
    "0x5C",
    "0x36",
    "BETWEEN",
)


@pytest.mark.parametrize("module", [views, spark_views], ids=lambda m: m.__name__)
def test_neither_view_builder_writes_the_per_person_sql_or_the_hmac_itself(module: object) -> None:
    source = Path(str(getattr(module, "__file__", ""))).read_text()
    found = [marker for marker in SHARED_SQL_MARKERS if marker.lower() in source.lower()]
    assert found == []


def test_the_duckdb_hmac_and_record_keys_match_the_reference() -> None:
    key = b"k" * 40
    secret = b"s" * 70  # longer than a block: hashed first, as RFC 2104 says
    outer, inner = hmac_pads(key)
    record_outer, record_inner = hmac_pads(secret)
    pseudonym = DUCKDB.pseudonym_hex("?::BLOB", "?::BLOB", "p")
    record_hmac = DUCKDB.hmac_hex("?::BLOB", "?::BLOB", "p")
    con = duckdb.connect()
    for hub in ("a1b2c3", "pseudonym-ü-2"):
        row = con.execute(
            f"SELECT {pseudonym} AS id, {', '.join(DUCKDB.record_keys('h'))} "
            f"FROM (SELECT p, {record_hmac} AS h FROM (SELECT ? AS p))",
            [outer, inner, record_outer, record_inner, hub],
        ).fetchone()
        assert row is not None
        assert row[0] == views.project_pseudonym(key, hub)
        assert row[0] == hmac.new(key, hub.encode(), sha256).hexdigest()[:32]
        expected = record_keys(secret, hub)
        assert row[1:] == (expected.rkey, expected.sid, expected.chk, *expected.buckets)


def test_the_duckdb_patients_row_is_the_practice_record_first() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE sources AS SELECT * FROM (VALUES "
        "('p1', 'b', 1980, 1, 'F', 'A', 'hospital', NULL, NULL), "
        "('p1', 'z', 1981, 2, 'F', 'B', 'practice', NULL, NULL), "
        "('p2', 'b', 1990, 3, 'M', 'C', 'hospital', NULL, NULL), "
        "('p2', 'a', 1991, 4, 'M', 'D', 'hospital', NULL, NULL), "
        "(NULL, 'a', 1991, 4, 'M', 'D', 'practice', NULL, NULL)) AS t(pseudonym, source, "
        "birth_year, birth_month, sex, area, source_kind, match_weight, linked_by)"
    )
    rows = con.execute(
        f"SELECT pseudonym, source FROM ({DUCKDB.patients('sources')}) ORDER BY 1"
    ).fetchall()
    assert rows == [("p1", "z"), ("p2", "a")]


def test_spark_renders_the_same_sql_in_its_own_dialect() -> None:
    items = SPARK.record_keys("__h")
    assert len(items) == 3 + len(BUCKET_COLUMNS)
    assert all("CONV(" in item and "'0x'" not in item for item in items)
    assert "DIV" in items[-1] and "//" not in items[-1]
    assert "SHA2(CAST(" in items[2]
    patients = SPARK.patients("sources")
    assert "ROW_NUMBER() OVER (PARTITION BY pseudonym" in patients
    assert "match_weight" in patients  # every stored column, as on DuckDB
    assert DUCKDB.patients("sources") != patients
