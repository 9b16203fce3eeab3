"""The query service: one researcher query from authorisation to release (or refusal).

``QueryService.run`` authorises the caller for the project (access), checks the SQL (guard),
plans contributor counting or differential privacy, asks who is excluded now (choices →
pseudonymiser), builds the project's views on a fresh connection (:func:`views.build_views`,
the only way any query sees data), locks the connection down, runs the query within limits,
checks the output, stores the outcome and records the public facts in the ledger:
``query_run`` for every query; ``output_checked`` for every output; ``release`` or ``refusal``.

Contract for the patients' usage report (built elsewhere on these files)
-----------------------------------------------------------------------
For every release (automatic, or after two checkers approved) the TRE writes, under
``<home>/tre/releases``:

* ``<release_id>.salt``: 32 hex digits, the salt of the release's cohort
  (:mod:`confide.tre.cohorts`);
* ``<release_id>.contributors``: the sorted, unique SHA-256 digests of
  ``salt + ":" + hub_pseudonym`` (UTF-8, no separator between digests: raw 32-byte values
  concatenated) of everyone with rows in the views the query read, after exclusions;
* ``<release_id>.excluded``: the same construction for the people in the record store whom
  their choices left out of this project at the time of the query.

``release_id`` is the ``release_id`` of the ledger's ``release`` entry (32 hex digits). A
person's report recomputes SHA-256(salt ":" their hub pseudonym) for each release in the
ledger and looks it up (binary search) in the two files (releases made before salts were
published have no ``.salt`` file and use the release id as their salt). The salt is random per
cohort, so releases of different cohorts cannot be joined; releases of one cohort share their
files, since they had the same contributors. Outputs held for review keep their files under
``<home>/tre/pending`` until the decision (moved on approval, deleted on rejection).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from confide.access.errors import project_not_found
from confide.access.model import Principal, ProjectGrant
from confide.access.service import ProjectNotActive
from confide.choices.policy import Terms
from confide.common import canonical
from confide.common.errors import InvalidInput
from confide.hub.records import RecordStore
from confide.ledger.entries import find_identifiers, loggable_sql
from confide.tre import views as project_views
from confide.tre.budget import BudgetExhausted, PrivacyBudgets
from confide.tre.disclosure import DEFAULT_PRESET, OutputStatus, check_output, round_to, rules_for
from confide.tre.dp import DpOptions, plan_dp, release_dp
from confide.tre.exclusions import OUTPUT_FORMS, Exclusions, ExclusionSource
from confide.tre.guard import check_query
from confide.tre.rewrite import plan_contributors
from confide.tre.runner import Limits, lock_down, run_checked
from confide.tre.store import QueryRecord, TreStore, query_not_found, utcnow

MODES = tuple(OUTPUT_FORMS)
ENGINES = ("duckdb", "spark")
MEMBERSHIP_FILES = ("salt", "contributors", "excluded")
DEFAULT_EPSILON = 0.5
_LEDGER_TEXT_MAX = 500


class AccessPort(Protocol):
    def authorise_query(self, principal: Principal, project_slug: str) -> ProjectGrant: ...

    def project(self, principal: Principal, slug: str) -> Any: ...

    def organisations_of(self, person_id: str) -> frozenset[str]: ...


class LedgerPort(Protocol):
    def append_many(self, items: Any) -> list[int]: ...


@dataclass
class QueryOutcome:
    """What the researcher gets back. ``result`` is set only for released outputs."""

    id: str
    project: str
    mode: str
    status: str
    reason: str | None
    result: dict[str, Any] | None
    labels: list[dict[str, Any]] = field(default_factory=list)
    budget_left: float | None = None
    release_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "mode": self.mode,
            "status": self.status,
            "reason": self.reason,
            "result": self.result,
            "labels": self.labels,
            "budget_left": self.budget_left,
            "release_id": self.release_id,
        }


def output_digest(result: dict[str, Any]) -> str:
    return hashlib.sha256(canonical.dumps(result)).hexdigest()


def public_text(text: str, fallback: str) -> str:
    """``text`` if it may go in the public log as is (short, printable, no identifier)."""
    clean = " ".join(str(text).split())[:_LEDGER_TEXT_MAX]
    if not clean or not clean.isprintable() or find_identifiers(clean):
        return fallback
    return clean


def opt_outs_reason(terms: Terms) -> str:
    if not terms.opt_outs_applied:
        return f"opt-outs not applied: {terms.exemption}"
    reasons = sorted(set(terms.excluding.values()))
    return "opt-outs applied: " + ("; ".join(reasons) if reasons else "no choice covers this use")


class QueryService:
    """Runs researchers' queries; see the module docstring for the whole path."""

    def __init__(
        self,
        access: AccessPort,
        records: RecordStore,
        exclusions: ExclusionSource,
        ledger: LedgerPort,
        store: TreStore,
        home: Any = None,
        *,
        limits: Limits | None = None,
        budgets: PrivacyBudgets | None = None,
        connect: Callable[[], duckdb.DuckDBPyConnection] = duckdb.connect,
        engine: str = "duckdb",
    ) -> None:
        self.access = access
        self.records = records
        self.exclusions = exclusions
        self.ledger = ledger
        self.store = store
        self.home = home
        self.limits = limits or Limits()
        self.budgets = budgets or PrivacyBudgets(store)
        self.connect = connect
        if engine not in ENGINES:
            raise InvalidInput(f"Unknown engine {engine!r}.", hint="Use duckdb or spark.")
        self.engine = engine
        self._spark_session: Any = None

    # --- running ----------------------------------------------------------------------------

    def run(
        self,
        principal: Principal,
        project_slug: str,
        sql: str,
        mode: str = "rounding",
        epsilon: float | None = None,
        preset: str | None = None,
        *,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        contributions: int = 1,
    ) -> QueryOutcome:
        """Run one query for ``principal`` on ``project_slug``; every outcome is stored and
        recorded. Unknown projects, other organisations' projects and missing roles raise
        (as the access party does); everything about the query itself comes back as an
        outcome with a status."""
        if mode not in MODES:
            raise InvalidInput(f"Unknown mode {mode!r}.", hint="Use rounding or dp.")
        preset = preset or DEFAULT_PRESET
        rules = rules_for(preset)
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidInput("The query is empty.", hint="Send one SELECT statement.")
        if mode == "rounding":
            epsilon = None
        elif epsilon is None:
            epsilon = DEFAULT_EPSILON
        query_id = uuid.uuid4().hex
        try:
            grant = self.access.authorise_query(principal, project_slug)
        except ProjectNotActive as inactive:
            project = self.access.project(principal, project_slug)
            record = self._record(query_id, project.id, project.slug, principal, sql, mode, preset)
            return self._refuse(record, inactive.message, subject="query")
        record = self._record(query_id, grant.project_id, grant.slug, principal, sql, mode, preset)
        record = _with(record, epsilon=epsilon)
        try:
            if mode == "dp":
                return self._run_dp(record, grant, sql, epsilon or DEFAULT_EPSILON, bounds,
                                    contributions)  # fmt: skip
            return self._run_rounding(record, grant, sql, rules)
        except InvalidInput as refusal:
            return self._refuse(record, refusal.message, subject="query")
        except duckdb.Error as error:
            # The engine's message may quote a data value, so only its kind is reported.
            kind = str(error).split(":", 1)[0][:60]
            return self._refuse(
                record,
                f"the query failed while running ({kind}); check types and casts",
                subject="query",
            )

    def _record(
        self,
        query_id: str,
        project_id: str,
        slug: str,
        principal: Principal,
        sql: str,
        mode: str,
        preset: str,
    ) -> QueryRecord:
        return QueryRecord(
            id=query_id,
            project_id=project_id,
            project_slug=slug,
            organisation_id=principal.organisation_id,
            person_id=principal.person_id,
            sql_text=sql,
            sql_digest=hashlib.sha256(sql.encode()).hexdigest(),
            mode=mode,
            preset=preset,
            epsilon=None,
            status="running",
            reason=None,
            result=None,
            release_id=None,
            release=None,
            created_at=utcnow(),
            decided_at=None,
        )

    def _run_rounding(
        self, record: QueryRecord, grant: ProjectGrant, sql: str, rules: Any
    ) -> QueryOutcome:
        allowed = project_views.view_columns(grant)
        checked = check_query(sql, allowed)
        plan = plan_contributors(checked, allowed)
        catalog = self.records.catalog()
        exclusions = self.exclusions.excluded(
            grant, OUTPUT_FORMS["rounding"], int(catalog["version"])
        )
        release_id = uuid.uuid4().hex
        with self._views(grant, exclusions, catalog, checked.tables) as (con, views):
            table = self._execute(con, grant, exclusions, plan, catalog)
            output = check_output(table, plan, rules)
            files = membership(con, views, checked.tables)
        result = output.as_dict()
        result.pop("status")
        suppressed = sum(1 for label in output.labels if label.action != "rounded")
        facts = self._release_facts(
            grant, release_id, "aggregate", checked.tables, files, exclusions.terms
        )
        if output.status is OutputStatus.HELD_FOR_REVIEW:
            reason = "held for review: " + "; ".join(output.reasons)
            return self._hold(record, result, facts, files, reason, rules.name)
        checked_entry = self._checked_entry(record, "passed", rules.name, suppressed)
        return self._release(record, result, facts, files, [checked_entry])

    def _run_dp(
        self,
        record: QueryRecord,
        grant: ProjectGrant,
        sql: str,
        epsilon: float,
        bounds: Mapping[str, tuple[float, float]] | None,
        contributions: int,
    ) -> QueryOutcome:
        options = DpOptions(epsilon=epsilon, contributions=contributions, bounds=dict(bounds or {}))
        allowed = project_views.view_columns(grant)
        checked = check_query(sql, allowed)
        plan = plan_dp(checked, allowed, options)
        left = self.budgets.status(grant.project_id).left
        if epsilon > left + 1e-9:
            raise BudgetExhausted(
                f"The project's privacy budget is exhausted: this query needs epsilon "
                f"{epsilon:g} but only {left:g} is left."
            )
        catalog = self.records.catalog()
        exclusions = self.exclusions.excluded(grant, OUTPUT_FORMS["dp"], int(catalog["version"]))
        release_id = uuid.uuid4().hex
        with self._views(grant, exclusions, catalog, checked.tables) as (con, views):
            table = self._execute(con, grant, exclusions, plan, catalog)
            files = membership(con, views, checked.tables)
        self.budgets.spend(grant.project_id, record.id, epsilon, options.delta)
        output = release_dp(table, plan, options)
        result = {
            "columns": output.columns,
            "rows": output.rows,
            "intervals": output.intervals,
            "confidence": 0.95,
            "labels": output.labels,
            "epsilon": output.epsilon,
            "delta": output.delta,
        }
        if output.threshold is not None:
            result["reasons"] = [
                f"groups whose noisy count of people is below {output.threshold:.1f} are not "
                "released (a group must not exist because of one person)"
            ]
        facts = self._release_facts(
            grant, release_id, "dp", checked.tables, files, exclusions.terms
        )
        checked_entry = self._checked_entry(
            record, "passed", "dp_laplace", 0, (float(output.epsilon), float(output.delta))
        )
        return self._release(record, result, facts, files, [checked_entry])

    # --- engines ----------------------------------------------------------------------------

    def _execute(
        self,
        con: duckdb.DuckDBPyConnection,
        grant: ProjectGrant,
        exclusions: Exclusions,
        plan: Any,
        catalog: dict[str, Any],
    ) -> pa.Table:
        """Run the checked plan on the chosen engine. The DuckDB connection is made either
        way: the cohort and the release files come from it, whichever engine computes."""
        if self.engine == "duckdb":
            return run_checked(con, plan, self.limits)
        from confide.tre.spark_engine import run_on_spark

        key = self.store.project_key(grant.project_id)
        return run_on_spark(self._spark(), self.records, grant, exclusions.pseudonyms, key,
                            plan, self.limits, catalog=catalog)  # fmt: skip

    def _spark(self) -> Any:
        """One local Spark session per process, started on first use."""
        if self._spark_session is None:
            from confide.tre.spark_session import local_session

            self._spark_session = local_session(
                self.store.folder / "spark", threads=self.limits.threads
            )
        return self._spark_session

    def close(self) -> None:
        """Stop the Spark session if one was started."""
        if self._spark_session is not None:
            self._spark_session.stop()
            self._spark_session = None

    # --- views and files --------------------------------------------------------------------

    def _views(
        self,
        grant: ProjectGrant,
        exclusions: Exclusions,
        catalog: dict[str, Any],
        tables: frozenset[str],
    ) -> _ProjectConnection:
        return _ProjectConnection(self, grant, exclusions, catalog, tables)

    def _write_files(self, folder: Path, release_id: str, files: Mapping[str, Path]) -> None:
        """Link the cohort's membership files under the release's name (copy if linking fails:
        another file system)."""
        for suffix in MEMBERSHIP_FILES:
            target = folder / f"{release_id}.{suffix}"
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(files[suffix], tmp)
            except OSError:
                shutil.copyfile(files[suffix], tmp)
            os.replace(tmp, target)

    # --- outcomes ---------------------------------------------------------------------------

    def _release_facts(
        self,
        grant: ProjectGrant,
        release_id: str,
        form: str,
        tables: frozenset[str],
        files: Mapping[str, Path],
        terms: Terms,
    ) -> dict[str, Any]:
        people = files["contributors"].stat().st_size // 32
        return {
            "release_id": release_id,
            "project_id": grant.slug,
            "organisation": grant.organisation,
            "purpose": grant.purpose.value,
            "recipient_kind": grant.recipient_kind.value,
            "legal_basis": grant.legal_basis.value,
            "data_form": form,
            "datasets": sorted(tables),
            "patients": round_to(people, 5),
            "opt_outs_applied": terms.opt_outs_applied,
            "opt_outs_reason": public_text(opt_outs_reason(terms), "see the choices policy"),
        }

    @staticmethod
    def _checked_entry(
        record: QueryRecord,
        outcome: str,
        method: str,
        suppressed: int,
        privacy: tuple[float, float] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "project_id": record.project_slug,
            "output_id": record.id,
            "outcome": outcome,
            "method": method,
            "cells_suppressed": suppressed,
        }
        if privacy is not None:
            body["epsilon"], body["delta"] = privacy
        return ("output_checked", body)

    def _query_entry(self, record: QueryRecord) -> tuple[str, dict[str, Any]]:
        body = {
            "project_id": record.project_slug,
            "query_id": record.id,
            "query_digest": record.sql_digest,
            "mode": record.mode,
        }
        if loggable_sql(record.sql_text):  # else only its digest is logged
            body["sql"] = record.sql_text
        return ("query_run", body)

    def _release(
        self,
        record: QueryRecord,
        result: dict[str, Any],
        facts: dict[str, Any],
        files: Mapping[str, Path],
        entries: list[tuple[str, dict[str, Any]]],
    ) -> QueryOutcome:
        release_id = facts["release_id"]
        body = release_entry(facts, record.id, result)
        self._write_files(self.store.releases, release_id, files)
        stored = _with(
            record,
            status=str(OutputStatus.RELEASED),
            result=result,
            release_id=release_id,
            release=body,
            decided_at=utcnow(),
        )
        self.store.save_query(stored)
        self.ledger.append_many([self._query_entry(record), *entries, ("release", body)])
        return self._outcome(stored, result)

    def _hold(
        self,
        record: QueryRecord,
        result: dict[str, Any],
        facts: dict[str, Any],
        files: Mapping[str, Path],
        reason: str,
        method: str,
    ) -> QueryOutcome:
        self._write_files(self.store.pending, facts["release_id"], files)
        stored = _with(
            record,
            status=str(OutputStatus.HELD_FOR_REVIEW),
            reason=reason,
            result=result,
            release_id=facts["release_id"],
            release=facts,
        )
        self.store.save_query(stored)
        self.ledger.append_many(
            [self._query_entry(record), self._checked_entry(record, "failed", method, 0)]
        )
        return self._outcome(stored, None)

    def _refuse(self, record: QueryRecord, reason: str, *, subject: str) -> QueryOutcome:
        stored = _with(record, status=str(OutputStatus.REFUSED), reason=reason, decided_at=utcnow())
        self.store.save_query(stored)
        refusal = {
            "subject": subject,
            "ref": record.id,
            "project_id": record.project_slug,
            "reason": public_text(reason, "refused before running (reason kept by the TRE)"),
        }
        self.ledger.append_many([self._query_entry(record), ("refusal", refusal)])
        return self._outcome(stored, None)

    def _outcome(self, record: QueryRecord, result: dict[str, Any] | None) -> QueryOutcome:
        labels = list((result or {}).get("labels") or [])
        return QueryOutcome(
            id=record.id,
            project=record.project_slug,
            mode=record.mode,
            status=record.status,
            reason=record.reason,
            result=result,
            labels=labels,
            budget_left=self.budgets.status(record.project_id).left,
            release_id=record.release_id if record.status == "released" else None,
        )

    # --- reading ----------------------------------------------------------------------------

    def show(self, principal: Principal, query_id: str) -> QueryOutcome:
        """A query of the caller's own organisation; its result only once released."""
        record = self.store.query(query_id)
        if record.organisation_id != principal.organisation_id or not principal.roles:
            raise query_not_found()
        released = record.status == str(OutputStatus.RELEASED)
        return self._outcome(record, record.result if released else None)

    def history(self, principal: Principal, project_slug: str) -> list[dict[str, Any]]:
        """The project's latest queries (never their results), for its own organisation."""
        project = self.access.project(principal, project_slug)
        if project.organisation_id != principal.organisation_id:
            raise project_not_found()
        return [
            {
                "id": r.id,
                "sql": r.sql_text,
                "mode": r.mode,
                "status": r.status,
                "reason": r.reason,
                "created_at": r.created_at,
            }
            for r in self.store.queries_of_project(project.id)
        ]

    def budget(self, principal: Principal, project_slug: str) -> dict[str, Any]:
        """The project's privacy budget, for its own organisation."""
        project = self.access.project(principal, project_slug)
        if project.organisation_id != principal.organisation_id:
            raise project_not_found()
        return {"project": project.slug, **self.budgets.status(project.id).as_dict()}


def release_entry(facts: Mapping[str, Any], output_id: str, result: dict[str, Any]) -> dict:
    """The ledger's ``release`` body: the stored facts, the output's id and digest, today."""
    return {
        **facts,
        "output_id": output_id,
        "output_digest": output_digest(result),
        "date": datetime.now(UTC).date().isoformat(),
    }


def _with(record: QueryRecord, **changes: Any) -> QueryRecord:
    return QueryRecord(**{**record.__dict__, **changes})


class _ProjectConnection:
    """A fresh connection with the project's views, locked down; closed on exit."""

    def __init__(
        self,
        service: QueryService,
        grant: ProjectGrant,
        exclusions: Exclusions,
        catalog: dict[str, Any],
        tables: frozenset[str] = frozenset(),
    ) -> None:
        self.service = service
        self.grant = grant
        self.exclusions = exclusions
        self.catalog = catalog
        self.tables = tables
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> tuple[duckdb.DuckDBPyConnection, project_views.ProjectViews]:
        service = self.service
        con = service.connect()
        try:
            views = project_views.build_views(
                con,
                service.records,
                self.grant,
                self.exclusions.pseudonyms,
                service.store.project_key(self.grant.project_id),
                cohorts=service.store.cohorts,
                cache=service.store.mapping_cache,
                catalog=self.catalog,
                exclusions_digest=self.exclusions.digest,
                materialise=self.tables,
            )
            lock_down(con, service.limits, views.readable)
        except BaseException:
            con.close()
            raise
        self.con = con
        return con, views

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()


def membership(
    con: duckdb.DuckDBPyConnection, views: project_views.ProjectViews, tables: frozenset[str]
) -> dict[str, Path]:
    """The membership files of a release that read ``tables`` (see the module docstring)."""
    members = views.members
    return {
        "salt": members.folder / "salt",
        "contributors": project_views.contributor_commitments(con, views, tables),
        "excluded": members.excluded,
    }
