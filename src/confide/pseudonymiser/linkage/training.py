"""Estimating the model's parameters from the data itself, with no labels.

- **u** (how often different people agree by chance): from pairs drawn at random. Some of
  those pairs are the same person (a share equal to the prior), which for a unique identifier
  swamps the chance agreements: so each level's observed rate ``o`` is corrected to
  ``u = (o - prior * m) / (1 - prior)``. A level never seen among ``U_PAIRS`` random pairs
  gets ``1 / U_PAIRS``, an upper bound that weakens rather than inflates its evidence.
- **m** (how often the same person's records fall in each level): expectation maximisation
  over the pairs that share a date of birth, then those that share a postcode (each session
  learns every comparison but the one it was blocked on; see ``EM_SESSIONS``). A level the
  data never showed is neutral (m = u) until a later training sees it, except those
  ``model.BORROWED_LEVELS`` names, which take the parameters of the level they stand for.
- **The prior** (how likely a record and a person picked at random are the same): counted from
  pairs that agree exactly on NHS number (or, without numbers, on date of birth, sex and
  postcode), divided by the share of records those rules could find. It is kept as the share
  of records expected to have a match, so that it follows the size of the person index.

Every m is kept at or above ``model.MIN_PROBABILITY`` (no outcome rules a match out on its
own) and every u at or above ``model.MIN_CHANCE`` (no agreement is taken as certain).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from splink import Linker, block_on

from confide.common.clock import utcnow
from confide.pseudonymiser.linkage import model
from confide.pseudonymiser.linkage.engines import Engine

U_PAIRS = 500_000
EM_PAIRS = 2_000_000
# EM sessions: the first learns all but date of birth, the second date of birth (on the pairs
# sharing a postcode or, failing that, an NHS number or a family name).
EM_SESSIONS = (("birth_date",), ("postcode", "nhs_number", "family_name"))
SEED = 2026
# Without NHS numbers, the prior's rule (date of birth, sex, postcode) misses people who moved.
MOVED_SHARE = 0.1
NOT_OBSERVED = "level not observed in training dataset"


@dataclass
class TrainedModel:
    """Splink's trained settings plus what the prior and the report need."""

    settings: dict[str, Any]
    optional: tuple[str, ...]
    match_share: float  # expected share of records with a match among the people
    facts: dict[str, Any] = field(default_factory=dict)

    def prior(self, people: int) -> float:
        """The probability that a record and one of ``people`` picked at random match."""
        return min(0.5, max(self.match_share, 1e-9) / max(people, 1))

    def settings_for(self, people: int, dialect: str = "duckdb") -> dict[str, Any]:
        """The model for scoring against ``people`` on an engine speaking ``dialect``: the
        comparisons' SQL written afresh for it, with the trained parameters."""
        fresh = model.settings(self.optional).get_settings(dialect).as_dict()
        for mine, trained in zip(fresh["comparisons"], self.settings["comparisons"], strict=True):
            pairs = zip(mine["comparison_levels"], trained["comparison_levels"], strict=True)
            for level, learned in pairs:
                if not level.get("is_null_level"):
                    level["m_probability"] = learned["m_probability"]
                    level["u_probability"] = learned["u_probability"]
        fresh["probability_two_random_records_match"] = self.prior(people)
        return fresh

    def to_json(self) -> bytes:
        body = {
            "settings": self.settings,
            "optional": list(self.optional),
            "match_share": self.match_share,
            "facts": self.facts,
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> TrainedModel:
        body = orjson.loads(data)
        return cls(body["settings"], tuple(body["optional"]), body["match_share"], body["facts"])

    def levels(self) -> list[dict[str, Any]]:
        """Each non-null level's comparison, label, m, u and weight (for operators)."""
        out = []
        for comparison in self.settings["comparisons"]:
            for level in comparison["comparison_levels"]:
                if level.get("is_null_level"):
                    continue
                out.append(
                    {
                        "comparison": comparison["output_column_name"],
                        "level": level.get("label_for_charts") or level["sql_condition"],
                        "m": level["m_probability"],
                        "u": level["u_probability"],
                    }
                )
        return out


def _usable_share(records: pa.Table, columns: tuple[str, ...]) -> float:
    """Share of records with a value in every one of ``columns``."""
    if records.num_rows == 0:
        return 0.0
    present = pa.array([True] * records.num_rows)
    for column in columns:
        present = pc.and_(present, pc.is_valid(records.column(column)))
    return pc.sum(pc.cast(present, pa.int64())).as_py() / records.num_rows


def _prior_rule(records: pa.Table, people: pa.Table) -> tuple[Any, float]:
    """(deterministic rule, its estimated recall) for the prior."""
    numbers = (
        records.column("nhs_number").null_count < records.num_rows
        and people.column("nhs_number").null_count < people.num_rows
    )
    if numbers:
        return block_on("nhs_number"), _usable_share(records, ("nhs_number",))
    columns = ("birth_date", "sex", "postcode")
    return block_on(*columns), _usable_share(records, columns) * (1 - MOVED_SHARE)


def _settle(settings: dict[str, Any]) -> dict[str, Any]:
    """Unobserved u → 1/U_PAIRS; u corrected for the matches among random pairs; unobserved
    m → u (neutral); both floored; and no level of agreement counts as stronger evidence
    against a match than complete disagreement (the last level), which a small or unusual
    training set can otherwise suggest."""
    prior = float(settings["probability_two_random_records_match"])
    named = {
        (c["output_column_name"], lv.get("label_for_charts")): lv
        for c in settings["comparisons"]
        for lv in c["comparison_levels"]
    }
    for level_name, source in model.BORROWED_LEVELS.items():
        level = named.get(level_name)
        if level is not None and not isinstance(level.get("m_probability"), float | int):
            level["m_probability"] = named[source]["m_probability"]
            level["u_probability"] = named[source]["u_probability"]
    for comparison in settings["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for level in levels:
            u = level.get("u_probability")
            m = level.get("m_probability")
            if not isinstance(u, float | int):
                u = 1 / U_PAIRS
            elif isinstance(m, float | int):
                u = (u - prior * m) / (1 - prior)
            if not isinstance(m, float | int):
                m = u
            level["u_probability"] = max(float(u), model.MIN_CHANCE)
            level["m_probability"] = max(float(m), model.MIN_PROBABILITY)
        disagree = levels[-1]["m_probability"] / levels[-1]["u_probability"]
        for level in levels[:-1]:
            level["m_probability"] = max(level["m_probability"], level["u_probability"] * disagree)
    return settings


def _expectation_maximisation(
    linker: Linker, inputs: list[Any], plan: tuple[str, ...]
) -> tuple[Linker, str | None]:
    """One EM session, blocked on the first column of ``plan`` it can use. Splink stops a
    session whose data separate matches so cleanly that an m rounds to zero, leaving its
    model part-way: the model is then taken back to where it was and the next column tried.
    Returns the linker to go on with and the column used (None if none could be)."""
    for column in plan:
        before = linker.misc.save_model_to_json()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(column), max_pairs=EM_PAIRS
            )
            return linker, column
        except ValueError:
            linker = Linker(inputs, before, log_level=logging.ERROR)
    return linker, None


def train(engine: Engine, records: pa.Table, people: pa.Table) -> TrainedModel:
    """Estimate every parameter from ``records`` linked against ``people`` (prepared tables)."""
    from confide.pseudonymiser.linkage.records import optional_columns

    started = time.perf_counter()
    optional = optional_columns(records, people)
    left, right = engine.register(records, "records"), engine.register(people, "people")
    linker = Linker([left, right], model.settings(optional), log_level=logging.ERROR)
    rule, recall = _prior_rule(records, people)
    linker.training.estimate_probability_two_random_records_match(
        [rule], recall=min(1.0, max(recall, 0.01))
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=SEED)
    sessions = []
    for plan in EM_SESSIONS:
        linker, used = _expectation_maximisation(linker, [left, right], plan)
        sessions.append(used)
    settings = _settle(linker.misc.save_model_to_json())
    prior = float(settings["probability_two_random_records_match"])
    return TrainedModel(
        settings=settings,
        optional=optional,
        match_share=prior * people.num_rows,
        facts={
            "trained_at": utcnow().isoformat(timespec="seconds"),
            "records": records.num_rows,
            "people": people.num_rows,
            "seconds": round(time.perf_counter() - started, 2),
            "engine": engine.name,
            "em_blocked_on": sessions,
        },
    )
