"""``confide link``: the same model on two files of person records, for evaluation.

Researchers of linkage methods can run Confide's model on their own data and compare it with
others. The model is trained on the two files themselves (no labels), exactly as inside the
pseudonymiser, then every record on the left is decided against the people on the right.

Input (CSV with a header, or Parquet), one row per record; only ``patient_id`` is required,
every other column is optional and used when both files have it:
``patient_id, nhs_number, given_name, family_name, birth_date (YYYY-MM-DD), sex, address_line,
postcode`` (the patients files of ``confide synth --format csv`` are such files).

Output (CSV), one row per left record that has a candidate (or per scored pair with
``--all-pairs``): ``left_id, right_id, match_weight, match_probability, band`` where ``band`` is
``link`` (probability at least 0.999), ``review`` (at least 0.5) or ``none``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from confide.common.errors import InvalidInput
from confide.pseudonymiser.linkage import records, scoring, training
from confide.pseudonymiser.linkage.engines import DuckDBEngine, Engine


def read_people(path: Path) -> pa.Table:
    """A file of person records, every column as text; clear errors for what cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file.", hint="Give a CSV or Parquet file.")
    try:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path)
        else:
            with pacsv.open_csv(path) as reader:  # the header, to read every column as text
                names = reader.schema.names
            options = pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True
            )
            table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(
            f"{path.name} cannot be read as CSV or Parquet ({exc.__class__.__name__}).",
            hint="Save it as CSV with a header row, or as Parquet.",
        ) from None
    if "patient_id" not in table.column_names:
        raise InvalidInput(
            f"{path.name} has no patient_id column.",
            hint="Every record needs an id in a column called patient_id.",
        )
    usable = [c for c in records.INPUT_COLUMNS if c in table.column_names]
    table = table.select(usable)
    table = pa.table({c: table.column(c).cast(pa.string()) for c in usable})
    ids = table.column("patient_id")
    if ids.null_count or len(ids.unique()) != table.num_rows:
        raise InvalidInput(
            f"{path.name} has missing or repeated patient_id values.",
            hint="Give every record its own id.",
        )
    return table


@dataclass
class Linked:
    decisions: pa.Table  # scoring.DECISIONS, one row per left record
    pairs: pa.Table  # every scored pair (record_id, person_id, match_weight)
    trained: training.TrainedModel
    seconds: dict[str, float]


def link_tables(
    left: pa.Table, right: pa.Table, engine: Callable[[], Engine] = DuckDBEngine
) -> Linked:
    """Train on ``left`` and ``right`` (raw person records), then decide each left record."""
    t0 = time.perf_counter()
    mine, theirs = records.prepare(left, "patient_id"), records.prepare(right, "patient_id")
    if mine.num_rows == 0 or theirs.num_rows == 0:
        raise InvalidInput("Both files need at least one record.")
    t1 = time.perf_counter()
    job = engine()
    try:
        trained = training.train(job, mine, theirs)
    finally:
        job.close()
    t2 = time.perf_counter()
    job = engine()
    try:
        pairs = scoring.score(job, trained, mine, theirs)
    finally:
        job.close()
    decisions = scoring.decide(mine, pairs)
    t3 = time.perf_counter()
    seconds = {"prepare": t1 - t0, "train": t2 - t1, "link": t3 - t2}
    return Linked(decisions, pairs, trained, {k: round(v, 2) for k, v in seconds.items()})


def _output(linked: Linked, all_pairs: bool) -> pa.Table:
    con = duckdb.connect()
    try:
        if all_pairs:
            con.register("pairs", linked.pairs)
            sql = (
                "SELECT record_id AS left_id, person_id AS right_id, match_weight, "
                "power(2.0, match_weight) / (1 + power(2.0, match_weight)) AS match_probability, "
                "NULL AS band FROM pairs ORDER BY left_id, match_weight DESC"
            )
        else:
            con.register("decisions", linked.decisions)
            sql = (
                "SELECT record_id AS left_id, person_id AS right_id, match_weight, "
                "probability AS match_probability, CASE band WHEN 'pending' THEN 'none' "
                "ELSE band END AS band FROM decisions WHERE person_id IS NOT NULL ORDER BY left_id"
            )
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def link_files(left: Path, right: Path, out: Path, *, all_pairs: bool = False) -> dict[str, Any]:
    """``confide link``: read, link, write; returns a summary (counts only)."""
    out = Path(out)
    if out.exists() and out.is_dir():
        raise InvalidInput(f"{out} is a folder.", hint="Give --out a file name, e.g. pairs.csv.")
    linked = link_tables(read_people(left), read_people(right))
    table = _output(linked, all_pairs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(table, out)
    except OSError as exc:
        raise InvalidInput(
            f"Cannot write {out} ({exc.__class__.__name__}).", hint="Choose a writable path."
        ) from None
    bands = linked.decisions.column("band").to_pylist()
    return {
        "left": linked.decisions.num_rows,
        "right": linked.trained.facts["people"],
        "linked": bands.count("link"),
        "review": bands.count("review"),
        "pending": bands.count("pending"),
        "pairs_written": table.num_rows,
        "out": str(out),
        "seconds": linked.seconds,
    }
