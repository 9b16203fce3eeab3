"""The query model: what a researcher may ask for, and nothing else.

A query is a :class:`QueryDefinition`: a person-level *population* (stage 1, the researcher's
SQL, in which every row belongs to one patient and is computed from that patient's own rows
only, see :mod:`confide.tre.person_level`), the *dimensions* to group by and the *measures* to
compute in each group. The aggregation across people (stage 2) is written by the system from
these names (:mod:`confide.tre.aggregation`), never by the researcher, so a researcher cannot
express an output that escapes the checks: there is no place to put arithmetic on counts, a
HAVING clause or a value that is not an aggregate.

The model is the learning of ehrQL's dataset definitions and measures: the researcher describes
a one-row-per-patient dataset and names what to count; the system computes the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any

from confide.common.errors import InvalidInput
from confide.tre.guard import PATIENT_COLUMN

MAX_DIMENSIONS = 4
MAX_MEASURES = 8
MAX_BANDS = 50
MAX_DOMAIN = 500
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


class ModelRefused(InvalidInput):
    """The query definition asks for something the model does not allow; says what and why."""


class MeasureKind(StrEnum):
    """What may be computed in a cell. Every measure is about people, never about rows."""

    COUNT = "count"  # people in the cell (with ``column``: people for whom it is true)
    SUM = "sum"  # sum over people of each person's total, clamped to the bounds
    MEAN = "mean"  # mean over people of each person's mean, clamped to the bounds
    QUANTILE = "quantile"  # a quantile of people's means: the mean of the k values nearest it


VALUE_KINDS = frozenset({MeasureKind.SUM, MeasureKind.MEAN, MeasureKind.QUANTILE})


@dataclass(frozen=True)
class Dimension:
    """A stage-1 column to group by, as is, cut into numeric ``bands`` or limited to a
    declared ``domain`` (every value of which gets a row, present or not; other values are
    grouped as ``other``)."""

    column: str
    name: str = ""
    bands: tuple[float, ...] | None = None
    domain: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.column)

    @property
    def declared(self) -> bool:
        """Whether every possible key is known before the query runs (bands or domain)."""
        return self.bands is not None or self.domain is not None

    def band_labels(self) -> list[str]:
        """The label of each band, in order: ``<e0``, ``e0-e1`` ... ``>=ek``."""
        assert self.bands is not None
        edges = [_number(e) for e in self.bands]
        labels = [f"<{edges[0]}"]
        labels += [f"{low}-{high}" for low, high in pairwise(edges)]
        labels.append(f">={edges[-1]}")
        return labels

    def keys(self) -> list[str] | None:
        """Every key this dimension can take, when declared."""
        if self.bands is not None:
            return self.band_labels()
        if self.domain is not None:
            return [*self.domain, OTHER]
        return None


OTHER = "other"


@dataclass(frozen=True)
class Measure:
    """One number per cell. ``column`` names a stage-1 column (for counts: an optional
    true/false column, counting the people for whom it is true); value measures need
    ``bounds`` (each person's value is clamped to them); quantiles need ``q``."""

    kind: MeasureKind
    name: str
    column: str | None = None
    bounds: tuple[float, float] | None = None
    q: float | None = None

    @property
    def is_value(self) -> bool:
        return self.kind in VALUE_KINDS

    @property
    def bound(self) -> float:
        """The largest absolute value one person can contribute (after clamping)."""
        if self.bounds is None:
            return 1.0
        return max(abs(self.bounds[0]), abs(self.bounds[1]))

    @property
    def width(self) -> float:
        """How far apart two people's contributions can be (the scale of the noise)."""
        if self.bounds is None:
            return 1.0
        return self.bounds[1] - self.bounds[0]


@dataclass(frozen=True)
class QueryDefinition:
    """A whole query: the person-level population SQL, dimensions and measures, and whether
    the system should add margins (totals over each dimension and the grand total)."""

    population: str
    dimensions: tuple[Dimension, ...]
    measures: tuple[Measure, ...]
    totals: bool = False
    source_sql: str | None = field(default=None, compare=False)  # aggregate SQL it came from

    def __post_init__(self) -> None:
        validate(self)

    def as_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data (what :func:`definition_from_dict` reads)."""
        return {
            "population": self.population,
            "dimensions": [_dimension_dict(d) for d in self.dimensions],
            "measures": [_measure_dict(m) for m in self.measures],
            "totals": self.totals,
        }


def _dimension_dict(dimension: Dimension) -> dict[str, Any]:
    out: dict[str, Any] = {"column": dimension.column, "name": dimension.name}
    if dimension.bands is not None:
        out["bands"] = list(dimension.bands)
    if dimension.domain is not None:
        out["domain"] = list(dimension.domain)
    return out


def _measure_dict(measure: Measure) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": str(measure.kind), "name": measure.name}
    if measure.column is not None:
        out["column"] = measure.column
    if measure.bounds is not None:
        out["bounds"] = list(measure.bounds)
    if measure.q is not None:
        out["q"] = measure.q
    return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# -- validation --------------------------------------------------------------------------------


def validate(definition: QueryDefinition) -> None:
    """Refuse a definition the model does not allow, saying exactly what."""
    if not isinstance(definition.population, str) or not definition.population.strip():
        raise ModelRefused("the population query is empty; write one SELECT with patient_id")
    if len(definition.dimensions) > MAX_DIMENSIONS:
        raise ModelRefused(f"at most {MAX_DIMENSIONS} dimensions may be grouped by")
    if not definition.measures:
        raise ModelRefused("name at least one measure (for example a count of people)")
    if len(definition.measures) > MAX_MEASURES:
        raise ModelRefused(f"at most {MAX_MEASURES} measures may be computed")
    names: set[str] = set()
    for dimension in definition.dimensions:
        _check_name(dimension.name, names)
        _check_column(dimension.column)
        _check_dimension(dimension)
    for measure in definition.measures:
        _check_name(measure.name, names)
        _check_measure(measure)


def _check_name(name: str, seen: set[str]) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelRefused(
            f"the output name {str(name)[:40]!r} is not allowed: use a letter then letters, "
            "digits or underscores (at most 63)"
        )
    if name.lower() in seen:
        raise ModelRefused(f"the output name {name!r} is used twice")
    if name.lower() == PATIENT_COLUMN:
        raise ModelRefused("patient_id cannot be an output: only aggregates leave")
    seen.add(name.lower())


def _check_column(column: str) -> None:
    if not isinstance(column, str) or not _NAME.match(column):
        raise ModelRefused(f"{str(column)[:40]!r} is not a column name of the population")
    if column.lower() == PATIENT_COLUMN:
        raise ModelRefused(
            "patient_id cannot be grouped by or measured: only aggregates over people leave"
        )


def _check_dimension(dimension: Dimension) -> None:
    if dimension.bands is not None and dimension.domain is not None:
        raise ModelRefused(f"the dimension {dimension.name!r} has both bands and a domain")
    if dimension.bands is not None:
        edges = dimension.bands
        if not 1 <= len(edges) <= MAX_BANDS:
            raise ModelRefused(f"the dimension {dimension.name!r} needs 1 to {MAX_BANDS} edges")
        if not all(isinstance(e, int | float) and math.isfinite(e) for e in edges):
            raise ModelRefused(f"the band edges of {dimension.name!r} must be numbers")
        if any(b <= a for a, b in pairwise(edges)):
            raise ModelRefused(f"the band edges of {dimension.name!r} must increase")
    if dimension.domain is not None:
        values = dimension.domain
        if not 1 <= len(values) <= MAX_DOMAIN:
            raise ModelRefused(f"the domain of {dimension.name!r} needs 1 to {MAX_DOMAIN} values")
        if not all(isinstance(v, str) and 0 < len(v) <= 100 and v.isprintable() for v in values):
            raise ModelRefused(f"the domain values of {dimension.name!r} must be short text")
        if len(set(values)) != len(values) or OTHER in values:
            raise ModelRefused(
                f"the domain of {dimension.name!r} repeats a value (or uses '{OTHER}', which "
                "is the group of values outside the domain)"
            )


def _check_measure(measure: Measure) -> None:
    if measure.column is not None:
        _check_column(measure.column)
    if measure.is_value:
        if measure.column is None:
            raise ModelRefused(f"the measure {measure.name!r} needs a column")
        if measure.bounds is None:
            raise ModelRefused(
                f"the measure {measure.name!r} needs bounds: the lowest and highest value one "
                f"person may contribute (for example --bound {measure.name}=0:200); values "
                "outside are clamped"
            )
        low, high = measure.bounds
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ModelRefused(f"the bounds of {measure.name!r} must be two numbers, low < high")
        if max(abs(low), abs(high)) > 1e12:
            raise ModelRefused(f"the bounds of {measure.name!r} are too wide (at most 1e12)")
    elif measure.bounds is not None:
        raise ModelRefused(f"the count {measure.name!r} takes no bounds")
    if measure.kind is MeasureKind.QUANTILE:
        if measure.q is None or not 0 < measure.q < 1:
            raise ModelRefused(f"the quantile {measure.name!r} needs q between 0 and 1")
    elif measure.q is not None:
        raise ModelRefused(f"only quantiles take q ({measure.name!r})")


# -- reading user input ---------------------------------------------------------------------------


def definition_from_dict(data: Mapping[str, Any]) -> QueryDefinition:
    """A definition from JSON-like data (the API's and the CLI's ``--definition`` form)."""
    if not isinstance(data, Mapping):
        raise ModelRefused("a query definition is an object with population and measures")
    unknown = sorted(set(data) - {"population", "dimensions", "measures", "totals"})
    if unknown:
        raise ModelRefused(f"unknown field(s) in the query definition: {', '.join(unknown)}")
    return QueryDefinition(
        population=_text(data.get("population"), "population"),
        dimensions=tuple(_dimension(d) for d in _list(data.get("dimensions", []), "dimensions")),
        measures=tuple(_measure(m) for m in _list(data.get("measures"), "measures")),
        totals=_flag(data.get("totals", False), "totals"),
    )


def _list(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ModelRefused(f"{what} must be a list")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ModelRefused(f"{what} must be text")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ModelRefused(f"{what} must be true or false")
    return value


def _numbers(value: Any, what: str) -> tuple[float, ...]:
    values = _list(value, what)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ModelRefused(f"{what} must be numbers")
    return tuple(float(v) for v in values)


def _dimension(data: Any) -> Dimension:
    if isinstance(data, str):
        return Dimension(column=data)
    if not isinstance(data, Mapping):
        raise ModelRefused("each dimension is a column name or an object with a column")
    unknown = sorted(set(data) - {"column", "name", "bands", "domain"})
    if unknown:
        raise ModelRefused(f"unknown field(s) in a dimension: {', '.join(unknown)}")
    column = _text(data.get("column"), "a dimension's column")
    domain = data.get("domain")
    return Dimension(
        column=column,
        name=_text(data.get("name", column), "a dimension's name"),
        bands=_numbers(data["bands"], "bands") if data.get("bands") is not None else None,
        domain=tuple(_text(v, "domain values") for v in _list(domain, "domain"))
        if domain is not None
        else None,
    )


def _measure(data: Any) -> Measure:
    if not isinstance(data, Mapping):
        raise ModelRefused("each measure is an object with a kind and a name")
    unknown = sorted(set(data) - {"kind", "name", "column", "bounds", "q"})
    if unknown:
        raise ModelRefused(f"unknown field(s) in a measure: {', '.join(unknown)}")
    raw_kind = _text(data.get("kind"), "a measure's kind").strip().lower()
    try:
        kind = MeasureKind(raw_kind)
    except ValueError:
        allowed = ", ".join(k.value for k in MeasureKind)
        raise ModelRefused(
            f"unknown measure kind {raw_kind[:20]!r}; use one of {allowed}"
        ) from None
    bounds = data.get("bounds")
    pair = _numbers(bounds, "bounds") if bounds is not None else None
    if pair is not None and len(pair) != 2:
        raise ModelRefused("bounds are two numbers: [low, high]")
    q = data.get("q")
    if q is not None and (not isinstance(q, int | float) or isinstance(q, bool)):
        raise ModelRefused("q must be a number between 0 and 1")
    column = data.get("column")
    return Measure(
        kind=kind,
        name=_text(data.get("name", raw_kind), "a measure's name"),
        column=_text(column, "a measure's column") if column is not None else None,
        bounds=(pair[0], pair[1]) if pair is not None else None,
        q=float(q) if q is not None else None,
    )


def parse_bounds(specs: Iterable[str]) -> dict[str, tuple[float, float]]:
    """``mean_hba1c=20:120`` lines -> ``{"mean_hba1c": (20.0, 120.0)}``: the bounds of value
    measures, by output name (blank lines skipped). The command line and the console use it."""
    out: dict[str, tuple[float, float]] = {}
    for raw in specs:
        spec = raw.strip()
        if not spec:
            continue
        name, sep, rest = spec.partition("=")
        low, colon, high = rest.partition(":")
        try:
            if not (sep and colon and name.strip()):
                raise ValueError
            bounds = (float(low), float(high))
            if not all(math.isfinite(b) for b in bounds) or bounds[0] >= bounds[1]:
                raise ValueError
        except ValueError:
            raise ModelRefused(
                f"The bound {spec[:60]!r} is not in the form name=LOW:HIGH with LOW below HIGH "
                "(for example mean_value=0:200)."
            ) from None
        out[name.strip()] = bounds
    return out
