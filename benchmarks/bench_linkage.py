"""Linkage quality and speed: hospital records linked to the people of a synthetic area.

For each size, a synthetic area of N people (as their GP practices record them) and N hospital
records of people drawn from it (outsiders included), each with the trusts' identifier errors
(missing or mistyped NHS numbers, swapped digits, old postcodes, swapped or mistyped birth
dates). The true person of every record is known, so each method gets precision, recall and F1
(per record: linked to the right person, to a wrong one, or to nobody), in the same run:

- **exact NHS number**: link when the record's NHS number is valid and someone has it (the
  baseline: what Confide did before probabilistic linkage);
- **pseudonymiser**: what the pseudonymiser does with a submission: the exact NHS number
  first, then the model (trained on the records themselves, no labels) for the rest;
- **model on every record**: ``confide link``'s way: the model alone, every record scored.

Usage::

    .venv/bin/python benchmarks/bench_linkage.py --patients 100000 --patients 1000000
    .venv/bin/python benchmarks/bench_linkage.py --patients 20000 --engine spark
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from common import print_rows, save

from confide.common import nhs_number
from confide.pseudonymiser.linkage import records, scoring, training
from confide.pseudonymiser.linkage.engines import DuckDBEngine, Engine
from confide.synth.generate import build_area
from confide.synth.hospital import IdentifierErrors, hospital_records


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days).astype("datetime64[D]")).cast(pa.string())


def make(patients: int, seed: int) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """(people, hospital records, each record's true person id or '' for outsiders)."""
    area = build_area(patients, seed, trusts=1)
    f = area.people.fields
    n = area.people.registered
    people = pa.table(
        {
            "patient_id": pa.array(np.arange(n).astype(str)),
            "nhs_number": pa.array(f["nhs"][:n].astype(str)),
            "birth_date": _dates(f["dob"][:n]),
            "sex": np.where(f["female"][:n], "female", "male"),
            "postcode": pa.array(f["postcode"][:n].astype(str)),
        }
    )
    rng = np.random.default_rng([seed, 7])
    who, rec = hospital_records(rng, area.people, patients, IdentifierErrors())
    hospital = pa.table(
        {
            "patient_id": pa.array(np.char.add("h", np.arange(patients).astype(str))),
            "nhs_number": pa.array(np.where(rec["nhs"] == "", None, rec["nhs"]).tolist()),
            "birth_date": _dates(rec["dob"]),
            "sex": np.where(f["female"][who], "female", "male"),
            "postcode": pa.array(rec["postcode"].astype(str)),
        }
    )
    truth = np.where(who < n, who.astype(str), "")
    return people, hospital, truth


def score(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Per record: right person (TP), wrong person (FP), no or wrong person when it had one
    (FN)."""
    linked = predicted != ""
    right = linked & (predicted == truth)
    tp, fp = int(right.sum()), int((linked & ~right).sum())
    fn = int(((truth != "") & ~right).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "false_links": fp}


def exact(people: pa.Table, hospital: pa.Table) -> np.ndarray:
    """The baseline: a valid NHS number that someone has."""
    con = duckdb.connect()
    con.register("people", people)
    valid = nhs_number.valid_mask(
        np.array(hospital.column("nhs_number").fill_null("").to_pylist(), dtype="S10")
    )
    con.register("hospital", hospital.append_column("valid", pa.array(valid)))
    found = con.sql(
        "SELECT coalesce(p.patient_id, '') FROM hospital h LEFT JOIN people p "
        "ON h.valid AND p.nhs_number = h.nhs_number ORDER BY h.patient_id"
    ).fetchnumpy()
    order = np.argsort(np.array(hospital.column("patient_id").to_pylist()))
    out = np.empty(hospital.num_rows, dtype=object)
    out[order] = next(iter(found.values()))
    return out.astype(str)


def _decided(decisions: pa.Table, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(linked person or '', probability) per id, from scoring decisions."""
    rows = {d["record_id"]: d for d in decisions.to_pylist()}
    person = np.array(
        [rows[i]["person_id"] if i in rows and rows[i]["band"] == "link" else "" for i in ids]
    )
    probability = np.array([rows[i]["probability"] if i in rows else 0.0 for i in ids])
    return person, probability


def run(patients: int, seed: int, engine: type[Engine] | Any) -> dict[str, Any]:
    cpu = time.process_time()
    t0 = time.perf_counter()
    people, hospital, truth = make(patients, seed)
    made = time.perf_counter() - t0
    ids = hospital.column("patient_id").to_pylist()
    out: dict[str, Any] = {"patients": people.num_rows, "records": hospital.num_rows,
                           "build_seconds": round(made, 1)}  # fmt: skip

    t = time.perf_counter()
    baseline = exact(people, hospital)
    out["exact"] = {**score(baseline, truth), "seconds": round(time.perf_counter() - t, 2)}

    t = time.perf_counter()
    mine, theirs = records.prepare(hospital, "patient_id"), records.prepare(people, "patient_id")
    prepared = time.perf_counter() - t
    t = time.perf_counter()
    job = engine()
    try:
        trained = training.train(job, mine, theirs)
    finally:
        job.close()
    trained_in = time.perf_counter() - t

    # The pseudonymiser: the NHS number first, the model for the rest.
    t = time.perf_counter()
    rest = baseline == ""
    job = engine()
    try:
        subset = mine.filter(pa.array(rest))
        decisions = scoring.decide(subset, scoring.score(job, trained, subset, theirs))
    finally:
        job.close()
    person, probability = _decided(decisions, ids)
    combined = np.where(rest, person, baseline)
    linked_by_model = rest & (person != "")
    out["pseudonymiser"] = {
        **score(combined, truth),
        "seconds": round(prepared + trained_in + time.perf_counter() - t, 2),
        "train_seconds": round(trained_in, 2),
        "scored_records": int(rest.sum()),
        "review": int((decisions.column("band").to_numpy(zero_copy_only=False) == "review").sum()),
        **_calibration(linked_by_model, combined, truth, probability),
    }

    # The model on every record (confide link).
    t = time.perf_counter()
    job = engine()
    try:
        decisions = scoring.decide(mine, scoring.score(job, trained, mine, theirs))
    finally:
        job.close()
    person, probability = _decided(decisions, ids)
    out["model"] = {
        **score(person, truth),
        "seconds": round(prepared + trained_in + time.perf_counter() - t, 2),
        **_calibration(person != "", person, truth, probability),
    }
    out["engine"] = trained.facts["engine"]
    # CPU seconds of this process (DuckDB's threads included) beside the wall clock: on a
    # machine others share, the wall clock also counts time spent waiting for a core.
    out["cpu_seconds"] = round(time.process_time() - cpu, 1)
    out["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _calibration(
    linked: np.ndarray, person: np.ndarray, truth: np.ndarray, probability: np.ndarray
) -> dict[str, float]:
    """The estimated false-match rate of probabilistic links beside the true one."""
    n = int(linked.sum())
    if not n:
        return {"estimated_fmr": 0.0, "true_fmr": 0.0}
    return {
        "estimated_fmr": float((1 - probability[linked]).sum() / n),
        "true_fmr": float((person[linked] != truth[linked]).sum() / n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, action="append")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    args = parser.parse_args()
    sizes = args.patients or [100_000]
    engine: Any = DuckDBEngine
    if args.engine == "spark":
        import tempfile
        from pathlib import Path

        from confide.pseudonymiser.linkage.engines import SparkEngine
        from confide.tre.spark_session import local_session

        spark = local_session(Path(tempfile.mkdtemp(prefix="bench-linkage-")), memory="4g")
        engine = lambda: SparkEngine(spark)  # noqa: E731
    results = []
    for n in sizes:
        r = run(n, args.seed, engine)
        results.append(r)
        rows = [("built in", f"{r['build_seconds']:.1f} s", "synthetic area and records")]
        for name, label in (("exact", "exact NHS number (baseline)"),
                            ("pseudonymiser", "NHS number, then the model"),
                            ("model", "the model on every record")):  # fmt: skip
            m = r[name]
            rows.append((label, f"F1 {m['f1']:.4f}",
                         f"precision {m['precision']:.5f}, recall {m['recall']:.5f}, "
                         f"{m['false_links']} wrong links, {m['seconds']:.1f} s"))  # fmt: skip
        p = r["pseudonymiser"]
        rows.append(("  of which training", f"{p['train_seconds']:.1f} s",
                     f"{p['scored_records']:,} records scored by the model; {p['review']:,} "
                     f"for review"))  # fmt: skip
        for name in ("pseudonymiser", "model"):
            rows.append((f"false-match rate ({name})", f"{r[name]['estimated_fmr']:.2e}",
                         f"estimated; true {r[name]['true_fmr']:.2e}"))  # fmt: skip
        rows.append(("whole run", f"{r['wall_seconds']:.1f} s",
                     f"wall clock; {r['cpu_seconds']:.1f} s of CPU"))  # fmt: skip
        print_rows(f"{r['records']:,} hospital records vs {r['patients']:,} people "
                   f"({r['engine']})", rows)  # fmt: skip
    save(f"linkage-{args.engine}", {"seed": args.seed, "results": results})


if __name__ == "__main__":
    main()
