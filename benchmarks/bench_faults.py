"""Kill -9 at random points during ingest, erasure, choice changes and relaying; then check.

Run: ``python benchmarks/bench_faults.py [--runs 120] [--seed 1] [--mode embedded|services|both]
[--patients 300]``. Loopback only; every run works on its own copy of one small installation.

- embedded: the party doing the work is the ``confide`` process running the command
  (``hub ingest``, ``choices set``, ``relay run``). It is started, killed with SIGKILL after a
  random delay, and the installation recovered as an operator would: ``confide relay run``, and
  the command run again when it did not say it was done.
- services: the installation runs under ``confide up``; a random party's process (from
  ``services/deployment.json``) is killed with SIGKILL at a random point of a workload of the
  same commands; the supervisor restarts it, the commands are retried as an operator would,
  and the relay drains.

After every run the installation's own stores are read through the project's Python API and
checked: nothing lost (every accepted choice change and acknowledged submission present, every
event delivered and in the ledger), nothing duplicated (no ledger entry twice for one event,
no record row twice, no submission ingested twice), every erasure complete (none pending, no
erased person's rows anywhere), and ``confide ledger verify`` passes. Violations must be 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    OUTBOX_PARTIES,
    answers,
    area_numbers,
    deployment,
    print_rows,
    save,
    services_up,
    settled,
    store_rows,
)

from confide.choices.model import ChangeRequest, Choice
from confide.choices.registry import ChoicesRegistry
from confide.common.home import Home
from confide.composition import Composition, compose
from confide.demo.pipeline import process_sources, source_folders
from confide.embedded import Installation
from confide.ledger.commitments import commitment_for, erasure_commitment
from confide.ledger.verify import LocalSource, verify
from confide.practice.agent import extract
from confide.synth import generate

DRAIN_SECONDS = 300  # the relay's longest backoff is five minutes
SCENARIOS = ("ingest", "erasure", "choice", "relay")
# The party whose process a kill hits in embedded mode: the command's own.
EMBEDDED_PARTY = {"ingest": "hub", "erasure": "choices", "choice": "choices", "relay": "relay"}
STEPS = "SELECT count(*), count(confirmed_at) FROM erasure_steps"
TABLES = ("patients", "registrations", "events", "medications", "hospital_episodes", "deaths")
FLAGS = ("--no-research", "--no-planning", "--no-commercial")
CHANNELS = ("online", "letter", "phone")


def confide(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "confide", *args, "--home", str(home)]


def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def must(argv: list[str]) -> str:
    done = run(argv)
    if done.returncode != 0:
        raise SystemExit(f"setup failed ({' '.join(argv[2:4])}): {done.stderr[-500:]}")
    return done.stdout


# -- the installation every run starts from ------------------------------------------------


@dataclass
class Template:
    home: Path
    waiting: list[str]  # submissions (relative to the home) not yet ingested
    numbers: list[str]  # NHS numbers of the practice's patients
    seconds: dict[str, float] = field(default_factory=dict)  # each command undisturbed
    # Each command's latest undisturbed times, by mode: the machine's load moves them.
    observed: dict[str, list[float]] = field(default_factory=dict)

    def delay(self, key: str, rng: random.Random) -> float:
        """A random moment in the command's likely run, from after its start-up to its end."""
        recent = sorted(self.observed.get(key, [])[-5:]) or [self.seconds[key.split(":")[-1]]]
        typical = recent[len(recent) // 2]
        return rng.uniform(0.4 * typical, typical)

    def timed(self, key: str, seconds: float) -> None:
        self.observed.setdefault(key, []).append(seconds)

    rows: dict[str, int] = field(default_factory=dict)  # in each table, after any ingest


def build_template(root: Path, patients: int, seed: int) -> Template:
    """A small area, every source extracted and ingested the way the demo does it, then each
    source extracted again: those second submissions wait to be ingested."""
    area, home = root / "area", root / "template"
    generate(area, patients=patients, seed=seed, fmt="csv")
    with Installation.open(Home.at(home)) as parties:
        process_sources(parties, area, workers=1)
        box_key = parties.pseudonymiser.public_key()
        waiting = [
            str(extract(folder, Home.at(home), box_key).path.relative_to(home))
            for folder, _meta in source_folders(area)
        ]
    return Template(home, waiting, area_numbers(area))


# -- reading an installation's stores ------------------------------------------------------


def progress(home: Path) -> tuple[Any, ...]:
    """What work has changed in the stores (read without opening any party)."""
    catalog = home / "hub" / "records" / "catalog.json"
    return (
        tuple(
            tuple(store_rows(home, p, "SELECT count(*), count(delivered_at) FROM outbox")[0])
            for p in OUTBOX_PARTIES
        ),
        store_rows(home, "choices", "SELECT count(*) FROM choice_events")[0][0],
        store_rows(home, "hub", "SELECT count(*) FROM submissions")[0][0],
        tuple(
            store_rows(home, "hub", "SELECT count(*), count(confirmed_at) FROM erasure_steps")[0]
        ),
        store_rows(home, "ledger", "SELECT count(*) FROM entries")[0][0],
        json.loads(catalog.read_text()).get("version") if catalog.exists() else None,
        sorted(  # files written on the way (pseudonymised batches, parquet, kept submissions)
            (str(f.relative_to(home)), f.stat().st_size)
            for party in ("hub", "pseudonymiser", "tre")
            for f in (home / party).rglob("*")
            if f.is_file() and not f.name.endswith(".lock")
        ),
    )


def row_counts(home: Path) -> dict[str, int]:
    with compose(Home.at(home)) as parties:
        records = parties.records_to_read()
        if records is None:
            return {}
        con = records.connect()
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def identity(body: dict[str, Any]) -> str | None:
    """What makes one ledger entry stand for one event: a choice change's or an erasure's
    commitment, a submission's id, a deletion notice's id."""
    for key in ("commitment", "submission_id", "notice_id"):
        if key in body:
            return str(body[key])
    return None


def check(home: Path, accepted: dict[str, Any], expected_rows: dict[str, int]) -> list[str]:
    """Every promise the faults must not break, read from the installation's own stores."""
    problems: list[str] = []
    ledger_keys = {
        k for (k,) in store_rows(home, "ledger", "SELECT event_key FROM received_events")
    }
    events: list[tuple[str, str, dict[str, Any]]] = []
    for party in OUTBOX_PARTIES:
        for event_id, kind, body, delivered in store_rows(
            home, party, "SELECT event_id, kind, body, delivered_at FROM outbox"
        ):
            events.append((event_id, kind, body if isinstance(body, dict) else json.loads(body)))
            if delivered is None:
                problems.append(f"lost: an event ({kind}) of {party} still pending")
            elif event_id not in ledger_keys:
                problems.append(f"lost: a delivered event ({kind}) of {party} not in the ledger")
    change_ids = {b.get("change_id") for _, _, b in events}
    changes = store_rows(
        home,
        "choices",
        "SELECT DISTINCT e.change_id, p.nhs_number, e.choice, e.value FROM choice_events e "
        "JOIN people p ON p.id = e.person_id",
    )
    # Every party opened here, in this process, even while the services run.
    with Composition(Home.at(home)) as parties:
        register = parties.erasure_register()  # read before the hub opens (it finishes them)
        if register.pending():
            problems.append(f"erasure: {len(register.pending())} pending after recovery")
        entries = parties.ledger.decoded(0, parties.ledger.head().size)
        by_kind = collections.Counter((e.kind, identity(e.body)) for e in entries)
        problems += [
            f"duplicated: {n} {kind} entries for one event"
            for (kind, key), n in by_kind.items()
            if n > 1 and key is not None
        ]
        secrets = parties.salts.secrets_for({n for _, n, _, _ in changes})
        for change_id, number, choice, value in changes:
            if change_id not in change_ids:
                problems.append("lost: a recorded choice change has no event")
            secret = secrets[number]
            if ("choice_changed", commitment_for(secret, change_id)) not in by_kind:
                problems.append("lost: a choice change has no choice_changed entry")
            erasure = ("erasure", erasure_commitment(secret, change_id))
            if choice == Choice.SHARE_NOTHING.value and value and erasure not in by_kind:
                problems.append("lost: a share-nothing change has no erasure entry")
        with parties.erasure_register().engine.connect() as conn:
            erased = set(conn.execute(text("SELECT pseudonym FROM erased_people")).scalars())
            status = dict(conn.execute(text("SELECT submission_id, status FROM submissions")).all())
        for sub in accepted.get("submissions", []):
            if status.get(sub) != "ingested":
                problems.append("lost: an acknowledged submission is not ingested")
            if ("submission_ingested", sub) not in by_kind:
                problems.append("lost: an ingested submission has no ledger entry")
        sharing_nothing = []
        if accepted.get("choices"):
            current = parties.choices.current_many(accepted["choices"])
            for number, wanted in accepted["choices"].items():
                have = current[number]
                for choice in wanted:
                    if not getattr(have, choice):
                        problems.append(f"lost: an accepted {choice} change is not in force")
                if "share_nothing" in wanted:
                    sharing_nothing.append(number)
        if sharing_nothing:
            pseudonyms = parties.pseudonymiser.pseudonyms_for(sharing_nothing)
            if any(p is not None and p not in erased for p in pseudonyms):
                problems.append("erasure: a person who shares nothing has no tombstone")
        records = parties.records_to_read()
        if records is not None:
            con = records.connect()
            if erased:
                con.execute("CREATE TEMP TABLE gone (pseudonym VARCHAR)")
                con.executemany("INSERT INTO gone VALUES (?)", [(p,) for p in erased])
            for t in TABLES:
                total = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                if total != expected_rows[t]:
                    kind = "duplicated" if total > expected_rows[t] else "lost"
                    problems.append(f"{kind}: {t} has {total} rows, {expected_rows[t]} expected")
                if (
                    erased
                    and con.execute(
                        f"SELECT count(*) FROM {t} JOIN gone USING (pseudonym)"
                    ).fetchone()[0]
                ):
                    problems.append(f"erasure: an erased person's rows remain in {t}")
            twice = con.execute(
                "SELECT count(*) FROM (SELECT pseudonym, source FROM patients "
                "GROUP BY ALL HAVING count(*) > 1)"
            ).fetchone()[0]
            if twice:
                problems.append(f"duplicated: {twice} people's patients rows twice")
        # What `confide ledger verify` does, against the state pinned on the template.
        state = home / "ledger-verifier" / "state.json"
        verified = verify(LocalSource(parties.ledger), state, local=parties.ledger)
        problems += [f"ledger: {p}" for p in verified["problems"]]
    return problems


# -- one run -------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    party: str
    landed: bool = False
    mid_work: bool = False
    recovered: bool = False
    problems: list[str] = field(default_factory=list)


def operation(
    scenario: str, home: Path, template: Template, rng: random.Random
) -> tuple[list[str], dict[str, Any]]:
    """The command a run kills, and what the installation must hold once it is accepted."""
    if scenario == "ingest":
        sub = rng.choice(template.waiting)
        return confide(home, "hub", "ingest", str(home / sub)), {"submissions": [Path(sub).name]}
    number = rng.choice(template.numbers)
    if scenario == "erasure":
        argv = ["choices", "set", "--nhs-number", number, "--share-nothing"]
        wanted = ["share_nothing"]
    elif scenario == "choice":
        flags = rng.sample(FLAGS, rng.randint(1, len(FLAGS)))
        argv = ["choices", "set", "--nhs-number", number, *flags]
        wanted = [f.removeprefix("--").replace("-", "_") for f in flags]
    else:  # relay: changes recorded without delivery, then the relay killed while it works
        return confide(home, "relay", "run"), {"choices": relay_backlog(home, template, rng)}
    argv += ["--channel", rng.choice(CHANNELS)]
    return confide(home, *argv), {"choices": {number: wanted}}


def relay_backlog(home: Path, template: Template, rng: random.Random) -> dict[str, list[str]]:
    """Choice changes (two of them share-nothing) committed with their events undelivered."""
    people = rng.sample(template.numbers, 12)
    wanted = {n: [rng.choice(("no_research", "no_planning", "no_commercial"))] for n in people}
    for n in people[:2]:
        wanted[n] = ["share_nothing"]
    with ChoicesRegistry.open(Home.at(home)) as registry:
        registry.bulk_set(
            [ChangeRequest(n, {Choice(c): True for c in cs}, "letter") for n, cs in wanted.items()],
            notify=False,
        )
    return wanted


def expected_after(template: Template, accepted: dict[str, Any]) -> dict[str, int]:
    """Rows each table must hold: the template's (a waiting submission holds the same records
    as the one it replaces), less the rows of everyone erased since."""
    base = template.rows
    with compose(Home.at(template.home)) as parties:
        before = {
            p for (p,) in store_rows(template.home, "hub", "SELECT pseudonym FROM erased_people")
        }
        numbers = [n for n, cs in (accepted.get("choices") or {}).items() if "share_nothing" in cs]
        leaving = {p for p in parties.pseudonymiser.pseudonyms_for(numbers) if p} - before
        records = parties.records_to_read()
        if not leaving or records is None:
            return base
        con = records.connect()
        con.execute("CREATE TEMP TABLE gone (pseudonym VARCHAR)")
        con.executemany("INSERT INTO gone VALUES (?)", [(p,) for p in leaving])
        return {
            t: base[t]
            - con.execute(f"SELECT count(*) FROM {t} JOIN gone USING (pseudonym)").fetchone()[0]
            for t in TABLES
        }


def embedded_run(scenario: str, template: Template, work: Path, rng: random.Random) -> Outcome:
    home = work / "home"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template.home, home, symlinks=True)
    argv, accepted = operation(scenario, home, template, rng)
    expected = expected_after(template, accepted)
    before = progress(home)
    out = Outcome(scenario, EMBEDDED_PARTY[scenario])
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    began = time.perf_counter()
    try:
        rc = process.wait(timeout=template.delay(scenario, rng))
        template.timed(scenario, time.perf_counter() - began)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        out.landed, rc = True, -9
        out.mid_work = progress(home) != before
    if out.landed or rc != 0:  # not told it was done: the operator recovers and asks again
        steps = [confide(home, "relay", "run"), argv]  # the command delivers as it ends
        out.recovered = all(run(step).returncode == 0 for step in steps)
        if not out.recovered:
            out.problems.append("recovery: a command failed after the kill")
    out.problems += check(home, accepted, expected)
    return noted(out)


def noted(out: Outcome) -> Outcome:
    """One line per run as it ends (long runs show their progress)."""
    how = "mid-work" if out.mid_work else "killed" if out.landed else "missed"
    print(f"  {out.scenario:<8} {out.party:<12} {how:<8} {'; '.join(out.problems) or 'ok'}")
    sys.stdout.flush()
    return out


def calibrate(template: Template, work: Path) -> None:
    """Each command's undisturbed time (the window kills land in). A clean ingest of a
    waiting submission (the same records again) must leave the template's rows: they are the
    reference for lost and duplicated rows."""
    template.rows = row_counts(template.home)
    must(confide(template.home, "ledger", "verify"))  # pins the log's origin and key
    rng = random.Random(0)
    for scenario in SCENARIOS:
        home = work / "calibrate" / "home"
        shutil.rmtree(home.parent, ignore_errors=True)
        shutil.copytree(template.home, home, symlinks=True)
        argv, accepted = operation(scenario, home, template, rng)
        began = time.perf_counter()
        must(argv)
        template.seconds[scenario] = time.perf_counter() - began
        if problems := check(home, accepted, expected_after(template, accepted)):
            raise SystemExit(f"an undisturbed {scenario} breaks the checks: {problems}")


def services_runs(
    scenarios: list[str], template: Template, work: Path, rng: random.Random, port: int
) -> list[Outcome]:
    """One installation under ``confide up`` for every run: each run's command goes to the
    services, and a random party's process is killed while it works; the supervisor restarts
    it, the operator asks again if the command failed, and the relay drains. The stores are
    then checked for everything accepted so far."""
    home = work / "home"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template.home, home, symlinks=True)
    outcomes: list[Outcome] = []
    so_far: dict[str, Any] = {"submissions": [], "choices": {}}
    with services_up(home, port):
        for scenario in scenarios:
            argv, accepted = operation(scenario, home, template, rng)
            so_far["submissions"] += accepted.get("submissions", [])
            for number, wanted in accepted.get("choices", {}).items():
                so_far["choices"].setdefault(number, []).extend(wanted)
            deployed = deployment(home) or {}
            party = rng.choice(sorted(deployed["parties"]))
            victim = int(deployed["parties"][party]["pid"])
            out = Outcome(scenario, party)
            before = progress(home)
            process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
            began = time.perf_counter()
            try:
                rc = process.wait(timeout=template.delay(f"services:{scenario}", rng))
                template.timed(f"services:{scenario}", time.perf_counter() - began)
            except subprocess.TimeoutExpired:
                out.landed = True
            os.kill(victim, signal.SIGKILL)
            if out.landed:
                out.mid_work = progress(home) != before
                rc = process.wait()
            restarted(home, party, victim)
            if rc != 0:  # the command failed with its party: the operator asks again
                out.recovered = any(run(argv).returncode == 0 for _ in range(3))
                if not out.recovered:
                    out.problems.append("recovery: a command failed after the restart")
            elif out.landed:
                out.recovered = True
            try:
                settled(home, timeout=DRAIN_SECONDS)
            except SystemExit:
                out.problems.append(f"recovery: the relay did not drain in {DRAIN_SECONDS} s")
            out.problems += check(home, so_far, expected_after(template, so_far))
            outcomes.append(noted(out))
    return outcomes


def restarted(home: Path, party: str, killed: int, timeout: float = 60.0) -> None:
    """Wait until the supervisor has restarted ``party`` (a new pid, answering)."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        found = deployment(home) or {}
        entry = found.get("parties", {}).get(party, {})
        if entry.get("pid") not in (None, killed) and answers(entry["url"]):
            return
        time.sleep(0.1)
    raise SystemExit(f"the supervisor did not restart {party} within {timeout:.0f} s")


# -- the report ----------------------------------------------------------------------------


def report(outcomes: list[Outcome], mode: str) -> dict[str, Any]:
    def table(key: Callable[[Outcome], str], title: str) -> dict[str, dict[str, int]]:
        groups: dict[str, list[Outcome]] = collections.defaultdict(list)
        for o in outcomes:
            groups[key(o)].append(o)
        figures = {
            name: {
                "runs": len(g),
                "landed": sum(o.landed for o in g),
                "mid_work": sum(o.mid_work for o in g),
                "recovered": sum(o.recovered for o in g),
                "violations": sum(len(o.problems) for o in g),
            }
            for name, g in sorted(groups.items())
        }
        print_rows(
            title,
            [("", "runs  killed  mid-work  recovered", "violations")]
            + [
                (
                    name,
                    f"{f['runs']:>4}  {f['landed']:>6}  {f['mid_work']:>8}  {f['recovered']:>9}",
                    f"{f['violations']}",
                )
                for name, f in figures.items()
            ],
        )
        return figures

    by_scenario = table(lambda o: o.scenario, f"Per scenario ({mode})")
    by_party = table(lambda o: o.party, f"Per killed party ({mode})")
    seen = collections.Counter(p for o in outcomes for p in o.problems)
    for problem, n in seen.most_common():
        print(f"  VIOLATION x{n}: {problem}")
    return {"by_scenario": by_scenario, "by_party": by_party, "problems": dict(seen)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=104, help="Runs in all (shared by the modes).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=["embedded", "services", "both"], default="embedded")
    parser.add_argument("--patients", type=int, default=300, help="Size of the area.")
    parser.add_argument("--base-port", type=int, default=8960, help="For the services.")
    args = parser.parse_args()
    print("command: python benchmarks/bench_faults.py " + " ".join(sys.argv[1:]))
    rng = random.Random(args.seed)
    results: dict[str, Any] = {"args": vars(args)}
    violations = 0
    with tempfile.TemporaryDirectory(prefix="confide-faults-") as folder:
        root = Path(folder)
        began = time.perf_counter()
        template = build_template(root, args.patients, args.seed)
        calibrate(template, root)
        print(
            f"{args.patients} patients' installation ready in {time.perf_counter() - began:.0f} s;"
            " undisturbed: " + ", ".join(f"{s} {t:.1f} s" for s, t in template.seconds.items())
        )
        modes = ["embedded", "services"] if args.mode == "both" else [args.mode]
        for m, mode in enumerate(modes):
            began = time.perf_counter()
            runs = args.runs // len(modes) + (m < args.runs % len(modes))
            scenarios = [SCENARIOS[i % len(SCENARIOS)] for i in range(runs)]
            rng.shuffle(scenarios)
            if mode == "embedded":
                outcomes = [embedded_run(s, template, root / "run", rng) for s in scenarios]
            else:
                outcomes = services_runs(scenarios, template, root / "run", rng, args.base_port)
            results[mode] = report(outcomes, mode)
            results[mode]["seconds"] = time.perf_counter() - began
            violations += sum(len(o.problems) for o in outcomes)
            print(f"  {len(outcomes)} runs in {time.perf_counter() - began:.0f} s")
    print(f"\nSaved {save('faults', results)}")
    if violations:
        raise SystemExit(f"{violations} violations")


if __name__ == "__main__":
    main()
