"""The query service: one researcher query from authorisation to release (or refusal).

``QueryService.run`` authorises the caller for the project (access) and records the query
(the TRE's store, then ``query_run`` in the ledger) before anything else, so every query that
ran is on record whatever happens next. Then one pipeline for every query:

1. read the query as a definition (:mod:`confide.tre.translate` or :mod:`confide.tre.model`)
   and prove its population person-level (:mod:`confide.tre.person_level`);
2. plan the system's aggregation for the project's protection, which its approver set
   (:mod:`confide.tre.aggregation`);
3. ask who is excluded now (choices -> pseudonymiser), build the project's views on a fresh,
   locked-down connection (:func:`views.build_views`, the only way any query sees data) and
   run the aggregation on the chosen engine;
4. protect every cell in the project's mode (:mod:`confide.tre.modes`): disclosure control
   and the differencing check, or differential privacy;
5. release, hold for two output checkers, or refuse; and record the public facts, shaped by
   :mod:`confide.tre.outcomes`.

Any failure becomes a refusal with a reason that depends on the query's text only: the guard's
and the model's reasons are about the SQL; an engine error is reported as one generic refusal
(its detail kept for operators). No release file is written before the query's record.

The files each release leaves for the patients' usage report, and their contract, are
described in :mod:`confide.tre.release_files`.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

import duckdb

from confide.access.errors import project_not_found
from confide.access.model import Principal, ProjectGrant
from confide.access.protection import ProtectionMode
from confide.access.service import ProjectNotActive
from confide.common import canonical
from confide.common.clock import utcnow
from confide.common.errors import InvalidInput
from confide.hub.records import RecordStore
from confide.rollout.gate import release_stopped
from confide.tre import views as project_views
from confide.tre.aggregation import AggregationPlan, plan_aggregation
from confide.tre.budget import PrivacyBudgets
from confide.tre.differencing import SketchStore
from confide.tre.disclosure import OutputStatus
from confide.tre.dp import DpOptions, check_dp_definition
from confide.tre.exclusions import OUTPUT_FORMS, Exclusions, ExclusionSource
from confide.tre.guard import check_query
from confide.tre.model import QueryDefinition
from confide.tre.modes import (
    Aggregated,
    DifferentialPrivacy,
    DisclosureControl,
    OutputMode,
    Protected,
)
from confide.tre.outcomes import (
    Entry,
    QueryOutcome,
    checked_entry,
    history_item,
    query_entry,
    query_outcome,
    refusal_entry,
    release_entry,
    release_facts,
)
from confide.tre.person_level import PersonLevelQuery, check_person_level
from confide.tre.release_files import SKETCH_SUFFIX, MembershipFiles, link_files, membership
from confide.tre.rules import rule_set
from confide.tre.runner import EngineResult, Limits, lock_down, run_aggregation
from confide.tre.store import QueryRecord, TreStore, query_not_found
from confide.tre.translate import read_query

ENGINES = ("duckdb", "spark")
DEFAULT_EPSILON = 0.5
GENERIC_FAILURE = (
    "the query could not be run (the TRE keeps the details for its operators); check the "
    "query's types, or ask the TRE's operators"
)
_log = logging.getLogger(__name__)


class AccessPort(Protocol):
    def authorise_query(self, principal: Principal, project_slug: str) -> ProjectGrant: ...

    def project(self, principal: Principal, slug: str) -> Any: ...

    def organisations_of(self, person_id: str) -> frozenset[str]: ...


class LedgerPort(Protocol):
    def append_many(self, items: Any) -> list[int]: ...


@dataclass(frozen=True)
class _Prepared:
    """A query read, proven and planned: everything decided before any data is read."""

    definition: QueryDefinition
    population: PersonLevelQuery
    plan: AggregationPlan
    mode: OutputMode

    @property
    def tables(self) -> frozenset[str]:
        return self.population.checked.tables


@dataclass(frozen=True)
class _Computed:
    """What the engine returned, with the membership files of the people behind it."""

    cells: list[dict[str, Any]]
    sketch_rows: list[dict[str, Any]] | None
    files: MembershipFiles
    exclusions: Exclusions


class _Opened(NamedTuple):
    """A project connection: the locked-down DuckDB connection and the views it shows."""

    con: duckdb.DuckDBPyConnection
    views: project_views.ProjectViews


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
        if engine not in ENGINES:
            raise InvalidInput(f"Unknown engine {engine!r}.", hint="Use duckdb or spark.")
        self.access = access
        self.records = records
        self.exclusions = exclusions
        self.ledger = ledger
        self.store = store
        self.home = home
        self.limits = limits or Limits()
        self.budgets = budgets or PrivacyBudgets(store)
        self.connect = connect
        self.engine = engine
        self.sketches = SketchStore(store.sketches)
        self._spark_session: Any = None
        self.recover()

    # --- running ----------------------------------------------------------------------------

    def run(
        self,
        principal: Principal,
        project_slug: str,
        query: str | Mapping[str, Any],
        *,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        totals: bool = False,
        epsilon: float | None = None,
    ) -> QueryOutcome:
        """Run one query for ``principal`` on ``project_slug``: aggregate SQL, or a definition
        (population, dimensions, measures). Every outcome is stored and recorded. Unknown
        projects, other organisations' projects and missing roles raise (as the access party
        does); everything about the query itself comes back as an outcome with a status.

        ``bounds``: value measures' bounds by output name (aggregate SQL form); ``totals``:
        add margins; ``epsilon``: the privacy budget this query spends (DP projects only)."""
        text = _query_text(query)
        try:
            grant = self.access.authorise_query(principal, project_slug)
        except ProjectNotActive as inactive:
            project = self.access.project(principal, project_slug)
            record = self._start(principal, project.id, project.slug, text, "sdc", "-")
            return self._refuse(record, inactive.message)
        protection = grant.protection
        busy = self._busy(grant.project_id)
        record = self._start(
            principal,
            grant.project_id,
            grant.slug,
            text,
            protection.mode.value,
            protection.rules,
        )
        if busy:
            return self._refuse(record, busy)
        if stopped := release_stopped(self.home, self.records.catalog()["sources"]):  # roll-out
            return self._refuse(record, stopped)
        try:
            prepared = self._prepare(grant, query, bounds, totals, epsilon)
            record = replace(
                record,
                definition=prepared.definition.as_dict(),
                epsilon=prepared.mode.epsilon,
            )
            computed = self._compute(grant, prepared)
            return self._decide(record, grant, prepared, computed)
        except InvalidInput as refusal:
            return self._refuse(record, refusal.message)
        except Exception:  # anything else: one generic reason, the detail for operators only
            detail = traceback.format_exc(limit=20)[-4000:]
            _log.warning("query %s failed inside the TRE (details in its record)", record.id)
            return self._refuse(record, GENERIC_FAILURE, detail=detail)

    def _start(
        self, principal: Principal, project_id: str, slug: str, text: str, mode: str, rules: str
    ) -> QueryRecord:
        """Record the query before anything runs: the TRE's row, then ``query_run``."""
        record = QueryRecord(
            id=uuid.uuid4().hex,
            project_id=project_id,
            project_slug=slug,
            organisation_id=principal.organisation_id,
            person_id=principal.person_id,
            sql_text=text,
            sql_digest=hashlib.sha256(text.encode()).hexdigest(),
            mode=mode,
            preset=rules,
            epsilon=None,
            status="running",
            reason=None,
            result=None,
            release_id=None,
            release=None,
            created_at=utcnow(),
            decided_at=None,
        )
        self.store.save_query(record)
        self.ledger.append_many([query_entry(record)])
        return record

    def _busy(self, project_id: str) -> str | None:
        """Why a new query must wait (too many running), or None. Counted from the store, so
        every process of one TRE shares the caps."""
        since = utcnow() - timedelta(seconds=2 * self.limits.seconds + 120)
        running = self.store.running(since)
        if running.per_project.get(project_id, 0) >= self.limits.running_per_project:
            return (
                f"this project already has {self.limits.running_per_project} queries running; "
                "run this one when they have finished"
            )
        if running.overall >= self.limits.running_overall:
            return "the research environment is busy; run the query again in a minute"
        return None

    def recover(self) -> None:
        """Queries left running by a process that stopped (a crash) become refusals, with
        their ledger entry; release files they may have linked are removed."""
        cutoff = utcnow() - timedelta(seconds=2 * self.limits.seconds + 120)
        for record in self.store.stale_running(cutoff):
            for folder in (self.store.releases, self.store.pending):
                for path in folder.glob(f"{record.release_id or record.id}.*"):
                    path.unlink(missing_ok=True)
            self._refuse(record, "the query was interrupted before it finished; run it again")

    # --- the pipeline -------------------------------------------------------------------------

    def _prepare(
        self,
        grant: ProjectGrant,
        query: str | Mapping[str, Any],
        bounds: Mapping[str, tuple[float, float]] | None,
        totals: bool,
        epsilon: float | None,
    ) -> _Prepared:
        allowed = project_views.view_columns(grant)
        definition = read_query(query, allowed, bounds, totals=totals)
        population = check_person_level(check_query(definition.population, allowed))
        protection = grant.protection
        rules = rule_set(protection.rules)
        mode: OutputMode
        if protection.mode is ProtectionMode.DP:
            check_dp_definition(definition)
            options = DpOptions(
                epsilon=DEFAULT_EPSILON if epsilon is None else epsilon,
                contributions=protection.contributions,
            )
            dp_mode = DifferentialPrivacy(options, self.budgets)
            dp_mode.check_budget(grant)
            mode = dp_mode
        elif epsilon is not None:
            raise InvalidInput(
                "This project's outputs are protected by disclosure control, set by its "
                "approver; it has no privacy budget to spend (leave epsilon out)."
            )
        else:
            mode = DisclosureControl(rules, self.sketches)
        plan = plan_aggregation(
            population,
            definition,
            dialect=self.engine,
            contributions=mode.contributions,
            quantile_window=rules.threshold,
        )
        return _Prepared(definition, population, plan, mode)

    def _compute(self, grant: ProjectGrant, prepared: _Prepared) -> _Computed:
        catalog = self.records.catalog()
        mode = prepared.mode
        form = OUTPUT_FORMS[mode.output_form]
        exclusions = self.exclusions.excluded(grant, form, int(catalog["version"]))
        with _ProjectConnection(self, grant, exclusions, catalog, prepared.tables) as opened:
            if self.engine == "duckdb":
                engine_result = run_aggregation(
                    opened.con, prepared.plan, self.limits, sketches=mode.sketching
                )
            else:
                engine_result = self._on_spark(grant, exclusions, prepared, catalog)
            files = membership(opened.con, opened.views, prepared.tables)
        sketch_rows = engine_result.sketch_rows
        return _Computed(
            cells=engine_result.cells.to_pylist(),
            sketch_rows=sketch_rows.to_pylist() if sketch_rows is not None else None,
            files=files,
            exclusions=exclusions,
        )

    def _on_spark(
        self,
        grant: ProjectGrant,
        exclusions: Exclusions,
        prepared: _Prepared,
        catalog: dict[str, Any],
    ) -> EngineResult:
        from confide.tre.spark_engine import aggregate_on_spark

        return aggregate_on_spark(
            self._spark(),
            self.records,
            grant,
            exclusions.pseudonyms,
            self.store.project_key(grant.project_id),
            self.store.record_key_secret(),
            prepared.plan,
            self.limits,
            catalog=catalog,
            sketches=prepared.mode.sketching,
        )

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

    # --- outcomes ---------------------------------------------------------------------------

    def _decide(
        self, record: QueryRecord, grant: ProjectGrant, prepared: _Prepared, computed: _Computed
    ) -> QueryOutcome:
        """Protect the cells in the project's mode, then release the output or hold it."""
        mode = prepared.mode
        protected = mode.protect(
            Aggregated(
                record=record,
                grant=grant,
                definition=prepared.definition,
                population=prepared.population,
                plan=prepared.plan,
                cells=computed.cells,
                sketch_rows=computed.sketch_rows,
            )
        )
        release_id = uuid.uuid4().hex
        facts = release_facts(
            grant,
            release_id,
            mode.data_form,
            prepared.tables,
            computed.files.contributors,
            computed.exclusions.terms,
        )
        if protected.held is not None:
            return self._hold(record, protected, facts, computed.files)
        checked = checked_entry(record, "passed", protected.check)
        if protected.sketches is not None:  # later outputs are checked against these too
            new = protected.sketches.new()
            self.sketches.save(record.organisation_id, grant.project_id, release_id, new)
        return self._release(record, protected.result, facts, computed.files, [checked])

    def _hold(
        self,
        record: QueryRecord,
        protected: Protected,
        facts: dict[str, Any],
        files: MembershipFiles,
    ) -> QueryOutcome:
        """Keep the output for two checkers (:mod:`confide.tre.review`), its files pending."""
        release_id = facts["release_id"]
        link_files(self.store.pending, release_id, files)
        if protected.sketches is not None:
            pending = self.store.pending / f"{release_id}.{SKETCH_SUFFIX}"
            self.sketches.write(pending, release_id, protected.sketches.released)
        stored = replace(
            record,
            status=str(OutputStatus.HELD_FOR_REVIEW),
            reason=protected.held,
            result=protected.result,
            release_id=release_id,
            release=facts,
        )
        self.store.update_query(stored)
        self.ledger.append_many([checked_entry(record, "failed", protected.check)])
        return self._outcome(stored, None)

    def _release(
        self,
        record: QueryRecord,
        result: dict[str, Any],
        facts: dict[str, Any],
        files: MembershipFiles,
        entries: list[Entry],
    ) -> QueryOutcome:
        release_id = facts["release_id"]
        body = release_entry(facts, record.id, result)
        stored = replace(
            record,
            status=str(OutputStatus.RELEASED),
            result=result,
            release_id=release_id,
            release=body,
            decided_at=utcnow(),
        )
        self.store.update_query(stored)
        link_files(self.store.releases, release_id, files)
        self.ledger.append_many([*entries, Entry("release", body)])
        return self._outcome(stored, result)

    def _refuse(
        self, record: QueryRecord, reason: str, *, detail: str | None = None
    ) -> QueryOutcome:
        stored = replace(
            record,
            status=str(OutputStatus.REFUSED),
            reason=reason,
            decided_at=utcnow(),
            detail=detail,
        )
        self.store.update_query(stored)
        self.ledger.append_many([refusal_entry(record, reason)])
        return self._outcome(stored, None)

    def _outcome(self, record: QueryRecord, result: dict[str, Any] | None) -> QueryOutcome:
        return query_outcome(record, result, self.budgets.left(record.project_id))

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
        return [history_item(record) for record in self.store.queries_of_project(project.id)]

    def budget(self, principal: Principal, project_slug: str) -> dict[str, Any]:
        """The project's privacy budget (DP projects), for its own organisation."""
        project = self.access.project(principal, project_slug)
        if project.organisation_id != principal.organisation_id:
            raise project_not_found()
        protection = project.protection
        out: dict[str, Any] = {"project": project.slug, "protection": protection.as_dict()}
        if protection.epsilon_total is not None:
            out.update(self.budgets.status(project.id, protection.epsilon_total).as_dict())
        return out


def _query_text(query: str | Mapping[str, Any]) -> str:
    if isinstance(query, str):
        if not query.strip():
            raise InvalidInput("The query is empty.", hint="Send one SELECT statement.")
        return query
    if isinstance(query, Mapping):
        try:
            return canonical.dumps(dict(query)).decode()
        except (TypeError, ValueError):  # not canonical JSON: a number or text out of range
            raise InvalidInput(
                "The query definition has a value that cannot be read (a number too large, "
                "or text that is not valid Unicode).",
                hint="Send the definition as the guide for researchers describes.",
            ) from None
    raise InvalidInput("A query is SQL text or a definition object.")


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

    def __enter__(self) -> _Opened:
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
                record_key=service.store.record_key_secret(),
            )
            lock_down(con, service.limits, views.readable)
        except BaseException:
            con.close()
            raise
        self.con = con
        return _Opened(con, views)

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()
