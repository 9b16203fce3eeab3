"""Notices per second for one practice: every patient's letter as a PDF, and the whole
practice's notice run (letters, register, weekly counts).

    python benchmarks/bench_rollout.py                     # a 10,000-patient practice
    python benchmarks/bench_rollout.py --patients 2000

Measured in the same run, on the same recipients:

- baseline: one blank A4 PDF per patient (what fpdf2 itself costs for a document);
- letters, one PDF each: each patient's full notice as its own PDF;
- letters, one batch PDF: the practice's batch to print, a page per patient;
- notice run: ``sending.send`` for every patient by letter (batch PDF, plus each notice
  recorded as sent in the practice's register, SQLite) and the weekly counts read back.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from common import print_rows, save
from fpdf import FPDF

from confide.common.home import Home
from confide.common.nhs_number import generate_test_numbers
from confide.rollout import letters
from confide.rollout.letters import Recipient
from confide.rollout.notices import NoticeRegister
from confide.rollout.notify import OutboxNotifier
from confide.rollout.sending import send

PRACTICE = "Leeds Road Surgery"
ODS = "A81001"
DAY = date(2025, 3, 3)


def recipients(n: int) -> list[Recipient]:
    numbers = generate_test_numbers(n, np.random.default_rng(1)).tolist()
    return [
        Recipient(number, f"Patient {i}", (f"{i} High Street", "Leeds", "LS1 1AA"))
        for i, number in enumerate(numbers)
    ]


def blank_pdfs(people: list[Recipient]) -> int:
    size = 0
    for _ in people:
        pdf = FPDF(format="A4", unit="mm")
        pdf.add_page()
        size += len(bytes(pdf.output()))
    return size


def each_letter(people: list[Recipient]) -> int:
    return sum(len(letters.letter_pdf(p, PRACTICE, DAY, 8)) for p in people)


def one_batch(people: list[Recipient]) -> int:
    return len(letters.batch_pdf(people, PRACTICE, DAY, 8))


def notice_run(people: list[Recipient]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        home = Home.at(Path(tmp) / "home")
        sent = send(home, ODS, people, OutboxNotifier(home.root / "outbox"),
                    practice_name=PRACTICE, weeks=8, on=DAY)  # fmt: skip
        with NoticeRegister(home) as register:
            weeks = register.weekly_counts(ODS)
        assert sum(c["sent"] for c in weeks.values()) == len(people)
        return sent.batch.stat().st_size if sent.batch else 0


def timed(fn, people) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """Wall-clock and CPU seconds (on a shared machine the wall clock includes waiting for a
    core; the CPU time does not)."""
    start, cpu = time.perf_counter(), time.process_time()
    size = fn(people)
    return time.perf_counter() - start, time.process_time() - cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    args = parser.parse_args()
    people = recipients(args.patients)
    runs = {
        "baseline: blank PDF each": blank_pdfs,
        "letters, one PDF each": each_letter,
        "letters, one batch PDF": one_batch,
        "notice run (batch + register)": notice_run,
    }
    payload, rows = {}, []
    for label, fn in runs.items():
        seconds, cpu, size = timed(fn, people)
        rate, cpu_rate = args.patients / seconds, args.patients / cpu
        payload[label] = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                          "per_second": round(rate, 1), "per_cpu_second": round(cpu_rate, 1),
                          "bytes": size}  # fmt: skip
        rows.append((label, f"{rate:,.0f} /s",
                     f"{cpu_rate:,.0f} per CPU-second; {seconds:.1f} s wall, "
                     f"{size / 1e6:.1f} MB"))  # fmt: skip
    print_rows(f"notices for a {args.patients:,}-patient practice", rows)
    print(f"\nSaved {save('rollout', {'patients': args.patients, **payload})}")


if __name__ == "__main__":
    main()
