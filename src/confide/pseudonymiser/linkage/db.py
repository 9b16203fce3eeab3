"""The linkage tables, in the pseudonymiser's own database (one DuckDB connection, shared with
the person index), and small helpers for them. What each table is for is in the module that
writes it: ``people``, ``pending``, ``review``, ``quality``."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS linkage_people (
    pseudonym VARCHAR PRIMARY KEY, nhs_number VARCHAR, birth_date DATE, sex VARCHAR,
    postcode VARCHAR, postcodes VARCHAR[], updated_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS pending_linkage (
    source VARCHAR, submission_id VARCHAR, ref INTEGER, nhs_number VARCHAR,
    birth_date VARCHAR, postcode VARCHAR, sex VARCHAR, reason VARCHAR,
    received_at TIMESTAMP, PRIMARY KEY (submission_id, ref));
CREATE SEQUENCE IF NOT EXISTS linkage_resolution_seq;
CREATE TABLE IF NOT EXISTS linkage_resolved (
    seq BIGINT DEFAULT nextval('linkage_resolution_seq'), source VARCHAR, submission_id VARCHAR,
    ref INTEGER, pseudonym VARCHAR, match_weight DOUBLE, probability DOUBLE, linked_by VARCHAR,
    birth_year SMALLINT, birth_month TINYINT, sex VARCHAR, area VARCHAR, resolved_at TIMESTAMP,
    PRIMARY KEY (submission_id, ref));
CREATE SEQUENCE IF NOT EXISTS linkage_review_ids;
CREATE TABLE IF NOT EXISTS linkage_review (
    id BIGINT DEFAULT nextval('linkage_review_ids'), source VARCHAR, submission_id VARCHAR,
    ref INTEGER, candidate VARCHAR, match_weight DOUBLE, probability DOUBLE, runner_up DOUBLE,
    queued_at TIMESTAMP, PRIMARY KEY (submission_id, ref));
CREATE TABLE IF NOT EXISTS linkage_decisions (
    submission_id VARCHAR, ref INTEGER, fingerprint VARCHAR, candidate VARCHAR,
    decision VARCHAR, reviewer VARCHAR, decided_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS linkage_quality (
    source VARCHAR PRIMARY KEY, submission_id VARCHAR, recorded_at TIMESTAMP,
    submitted INTEGER, excluded INTEGER, by_nhs_number INTEGER, probabilistic INTEGER,
    expected_false DOUBLE);
"""


def create(con: duckdb.DuckDBPyConnection) -> None:
    run(con, SCHEMA)


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list:
    """Execute ``sql`` and fetch its result whole (leaving no result open on ``con``)."""
    return con.execute(sql, params or []).fetchall()


def with_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    table: pa.Table,
    sql: str,
    params: list[Any] | None = None,
) -> pa.Table:
    """Run ``sql`` with ``table`` visible as ``name``; the result as Arrow (empty for DML)."""
    con.register(name, table)
    try:
        result = con.sql(sql, params=params or None)
        return result.to_arrow_table() if result is not None else pa.table({})
    finally:
        con.unregister(name)
