"""Scoring candidate pairs and deciding, for each record, which person (if any) it is.

Splink scores each (record, person) pair on its own. A record belongs to at most one person,
so the decision uses the probability that the record is *this* person rather than any other
candidate or nobody: with odds ``o_i = 2 ** match_weight_i`` for each candidate,
``p_i = o_i / (1 + sum(o))``. Two people who match equally well (twins sharing a date of
birth and postcode, say) therefore each get at most one half, and go to review, never to an
automatic link.
"""

from __future__ import annotations

import logging

import duckdb
import pyarrow as pa
from splink import Linker

from confide.pseudonymiser.linkage import model
from confide.pseudonymiser.linkage.engines import Engine
from confide.pseudonymiser.linkage.training import TrainedModel

# Term frequencies are counted over the people, for the columns whose exact match the model
# weights by how common the value is.
TF_COLUMNS = ("birth_date", "postcode", "given_name", "family_name")
# Pairs less likely than this are not worth keeping (they barely move any decision).
KEEP_PROBABILITY = 0.001

PAIRS = pa.schema(
    [("record_id", pa.string()), ("person_id", pa.string()), ("match_weight", pa.float64())]
)
DECISIONS = pa.schema(
    [
        ("record_id", pa.string()),
        ("person_id", pa.string()),
        ("match_weight", pa.float64()),
        ("probability", pa.float64()),
        ("runner_up", pa.float64()),
        ("candidates", pa.int64()),
        ("band", pa.string()),  # link | review | pending
    ]
)


def frequency_sql(column: str, table: str) -> str:
    """SQL for Splink's term-frequency lookup of ``column``: ``(value, tf_column)``."""
    return (
        f"SELECT {column}, count(*) / sum(count(*)) OVER () AS tf_{column} FROM {table} "
        f"WHERE {column} IS NOT NULL GROUP BY {column}"
    )


def term_frequencies(people: pa.Table, columns: tuple[str, ...]) -> dict[str, pa.Table]:
    """``{column: (value, tf_column)}`` over ``people``, for the weighted columns present."""
    con = duckdb.connect()
    try:
        con.register("people", people)
        return {
            c: con.sql(frequency_sql(c, "people")).to_arrow_table()
            for c in columns
            if c in TF_COLUMNS
        }
    finally:
        con.close()


def score(
    engine: Engine,
    trained: TrainedModel,
    records: pa.Table,
    people: pa.Table,
    *,
    people_count: int | None = None,
    frequencies: dict[str, pa.Table] | None = None,
) -> pa.Table:
    """``(record_id, person_id, match_weight)`` for every candidate pair worth keeping.

    ``people`` may be only the candidates for ``records``: ``people_count`` (the size of the
    whole index, for the prior) and ``frequencies`` (counted over the whole index) then say
    what the model needs to know about the rest."""
    if records.num_rows == 0 or people.num_rows == 0:
        return PAIRS.empty_table()
    settings = trained.settings_for(people_count or people.num_rows, engine.dialect)
    left, right = engine.register(records, "records"), engine.register(people, "people")
    linker = Linker([left, right], settings, log_level=logging.ERROR)
    weighted = ("birth_date", "postcode", *trained.optional)
    tf = frequencies if frequencies is not None else term_frequencies(people, weighted)
    for column, table in tf.items():
        linker.table_management.register_term_frequency_lookup(
            engine.register(table, f"tf_{column}"), column
        )
    predictions = linker.inference.predict_between(
        left, right, threshold_match_probability=KEEP_PROBABILITY, warning_mode="never"
    )
    pairs = predictions.as_pyarrow_table()
    con = duckdb.connect()
    try:
        con.register("pairs", pairs)
        return con.sql(
            "SELECT CASE WHEN source_dataset_l = 'records' THEN unique_id_l ELSE unique_id_r END "
            "AS record_id, CASE WHEN source_dataset_l = 'records' THEN unique_id_r "
            "ELSE unique_id_l END AS person_id, match_weight FROM pairs"
        ).to_arrow_table()
    finally:
        con.close()


def decide(records: pa.Table, pairs: pa.Table) -> pa.Table:
    """One ``DECISIONS`` row per record: its best candidate, that candidate's probability
    among all of the record's candidates, the runner-up's, and the band."""
    con = duckdb.connect()
    try:
        con.register("ids", records.select(["unique_id"]))
        con.register("pairs", pairs)
        table = con.sql(
            f"""
            WITH odds AS (
                SELECT record_id, person_id, match_weight,
                       power(2.0, least(match_weight, 1000)) AS odds FROM pairs),
            ranked AS (
                SELECT *, row_number() OVER (PARTITION BY record_id
                                             ORDER BY match_weight DESC, person_id) AS rank,
                       sum(odds) OVER (PARTITION BY record_id) AS total,
                       count(*) OVER (PARTITION BY record_id) AS candidates
                FROM odds),
            best AS (
                SELECT r.record_id, r.person_id, r.match_weight, r.odds / (1 + r.total) AS p,
                       coalesce(s.odds / (1 + s.total), 0) AS runner_up, r.candidates
                FROM ranked r LEFT JOIN ranked s ON s.record_id = r.record_id AND s.rank = 2
                WHERE r.rank = 1)
            SELECT i.unique_id AS record_id, b.person_id, b.match_weight,
                   coalesce(b.p, 0) AS probability, coalesce(b.runner_up, 0) AS runner_up,
                   coalesce(b.candidates, 0) AS candidates,
                   CASE WHEN b.p >= {model.LINK_PROBABILITY} THEN 'link'
                        WHEN b.p >= {model.REVIEW_PROBABILITY} THEN 'review'
                        ELSE 'pending' END AS band
            FROM ids i LEFT JOIN best b ON b.record_id = i.unique_id
            ORDER BY i.unique_id
            """
        ).to_arrow_table()
        return table.cast(DECISIONS)
    finally:
        con.close()
