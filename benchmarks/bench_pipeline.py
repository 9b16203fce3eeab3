"""Throughput of synth, extract, pseudonymise and ingest, beside same-run baselines.

Baselines: for pseudonymisation, OpenSSL's own HMAC-SHA256 rate (``openssl speed -hmac sha256
-bytes 32``); for extract + ingest, DuckDB converting the same CSV export straight to Parquet
with no checks at all.

    python benchmarks/bench_pipeline.py --patients 100000 --patients 1000000 [--fhir]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_seconds, print_rows, save

from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.demo.pipeline import process_sources
from confide.embedded import Installation
from confide.pseudonymiser.keys import hmac_many
from confide.synth import generate


def openssl_hmac_rate() -> float | None:
    """HMAC-SHA256 operations per second on 32-byte inputs, as OpenSSL measures them."""
    if shutil.which("openssl") is None:
        return None
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "-hmac", "sha256", "-bytes", "32"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    match = re.search(r"hmac\(sha256\)\s+([\d.]+)k", out)
    return float(match.group(1)) * 1000 / 32 if match else None


def bench_hmac(count: int, repeats: int) -> float:
    numbers = [n.encode() for n in generate_test_numbers(count, np.random.default_rng(1))]
    key = b"k" * 32
    seconds, _ = median_seconds(lambda: hmac_many(key, numbers), repeats)
    return count / seconds


def csv_rows(area: Path) -> int:
    con = duckdb.connect()
    total = 0
    for path in area.glob("*/*.csv"):
        total += con.execute(
            f"SELECT count(*) FROM read_csv('{path}', all_varchar=true)"
        ).fetchone()[0]
    return total


def duckdb_straight(area: Path, out: Path) -> float:
    """Seconds for DuckDB to convert every CSV file of the export to Parquet, no checks."""
    con = duckdb.connect()
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for i, path in enumerate(sorted(area.glob("*/*.csv"))):
        con.execute(
            f"COPY (SELECT * FROM read_csv('{path}', all_varchar=true)) "
            f"TO '{out}/{i}.parquet' (FORMAT parquet, COMPRESSION zstd)"
        )
    return time.perf_counter() - t


def run_pipeline(area: Path, home: Home) -> dict[str, float]:
    """Extract and ingest every source the way the demo does (two sources at a time)."""
    with Installation.open(home) as parties:
        t = time.perf_counter()
        done = process_sources(parties, area, workers=2)
        wall = time.perf_counter() - t
    return {**done.seconds, "wall": wall}


def bench_erasure(home: Home, share: float) -> dict[str, float]:
    """Erase ``share`` of the store's people in one batch, beside the cost of rewriting every
    live file once with DuckDB and no filter (the floor for any full-store deletion)."""
    with Installation.open(home) as parties:
        records = parties.hub.records
        con = records.connect()
        people = [r[0] for r in con.execute("SELECT DISTINCT pseudonym FROM patients").fetchall()]
        leaving = people[: int(len(people) * share)]
        files = [
            f
            for t in (
                "patients",
                "registrations",
                "events",
                "medications",
                "hospital_episodes",
                "deaths",
            )
            for f in records.files(t)
        ]
        scratch = Path(tempfile.mkdtemp(prefix="confide-rewrite-"))
        t = time.perf_counter()
        for i, path in enumerate(files):
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{path}')) TO '{scratch}/{i}.parquet' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        rewrite = time.perf_counter() - t
        shutil.rmtree(scratch, ignore_errors=True)
        t = time.perf_counter()
        removed = parties.hub.erase(leaving)
        erase = time.perf_counter() - t
    return {"people": len(leaving), "rows": removed, "erase_s": erase, "rewrite_s": rewrite}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, action="append")
    parser.add_argument("--fhir", action="store_true", help="Also run the FHIR path at 100k.")
    parser.add_argument("--repeats", type=int, default=3, help="Repeats for the HMAC figures.")
    parser.add_argument(
        "--hmac-numbers", type=int, default=1_000_000, help="NHS numbers per HMAC repeat."
    )
    parser.add_argument(
        "--erase-share", type=float, default=0.1, help="Share of people to erase afterwards."
    )
    args = parser.parse_args()
    sizes = args.patients or [100_000]
    results: dict[str, object] = {}

    openssl = openssl_hmac_rate()
    ours = bench_hmac(args.hmac_numbers, args.repeats)
    results["hmac"] = {"confide_per_s": ours, "openssl_per_s": openssl}
    print_rows(
        "Pseudonymisation (HMAC-SHA256 per NHS number, one core, median)",
        [
            ("Confide", f"{ours:,.0f}/s", ""),
            (
                "OpenSSL speed",
                f"{openssl:,.0f}/s" if openssl else "n/a",
                f"ratio {ours / openssl:.2f}" if openssl else "",
            ),
        ],
    )

    for size in sizes:
        work = Path(tempfile.mkdtemp(prefix="confide-bench-"))
        try:
            area = work / "area"
            t = time.perf_counter()
            summary = generate(area, patients=size, seed=1, fmt="csv")
            t_synth = time.perf_counter() - t
            rows = csv_rows(area)
            t_duck = duckdb_straight(area, work / "straight")
            stages = run_pipeline(area, Home.at(work / "home"))
            erasure = bench_erasure(Home.at(work / "home"), args.erase_share)
            total = stages["wall"]
            row = {
                "patients": size,
                "csv_rows": rows,
                "synth_s": t_synth,
                "duckdb_straight_s": t_duck,
                **{f"{k}_s": v for k, v in stages.items()},
                "pipeline_s": total,
                "synth_summary": summary,
                "erasure": erasure,
            }
            results[f"csv_{size}"] = row
            print_rows(
                f"CSV, {size:,} patients ({rows:,} rows in the export)",
                [
                    ("synth", f"{t_synth:,.1f} s", f"{rows / t_synth:,.0f} rows/s"),
                    (
                        "extract",
                        f"{stages['extract']:,.1f} s",
                        f"{rows / stages['extract']:,.0f} rows/s",
                    ),
                    ("pseudonymise", f"{stages['pseudonymise']:,.1f} s", ""),
                    ("ingest (checks, store)", f"{stages['ingest']:,.1f} s", ""),
                    ("extract→ingest total", f"{total:,.1f} s", f"{rows / total:,.0f} rows/s"),
                    (
                        "DuckDB CSV→Parquet",
                        f"{t_duck:,.1f} s",
                        f"{rows / t_duck:,.0f} rows/s; Confide at {t_duck / total:.2f}× its rate",
                    ),
                    (
                        f"erase {erasure['people']:,} people",
                        f"{erasure['erase_s']:,.1f} s",
                        f"{erasure['rows']:,} rows; one unfiltered rewrite of the store takes "
                        f"{erasure['rewrite_s']:,.1f} s "
                        f"(ratio {erasure['erase_s'] / erasure['rewrite_s']:.2f})",
                    ),
                ],
            )
            if args.fhir and size <= 100_000:
                fhir_area = work / "fhir"
                t = time.perf_counter()
                generate(fhir_area, patients=size, seed=1, fmt="fhir")
                t_fhir_synth = time.perf_counter() - t
                fhir_stages = run_pipeline(fhir_area, Home.at(work / "home-fhir"))
                fhir_total = fhir_stages["wall"]
                results[f"fhir_{size}"] = {"synth_s": t_fhir_synth, **fhir_stages}
                print_rows(
                    f"FHIR NDJSON, {size:,} patients",
                    [
                        ("synth", f"{t_fhir_synth:,.1f} s", ""),
                        ("extract", f"{fhir_stages['extract']:,.1f} s", ""),
                        (
                            "pseudonymise + ingest",
                            f"{fhir_total - fhir_stages['extract']:,.1f} s",
                            "",
                        ),
                        ("extract→ingest total", f"{fhir_total:,.1f} s", "target < 180 s"),
                    ],
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nSaved {save('pipeline', results)}")


if __name__ == "__main__":
    main()
