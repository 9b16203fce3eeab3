"""Who must be left out of a project's views, asked afresh for every query.

The composition is choices → pseudonymiser → hub pseudonyms, and it happens here, in the TRE,
never in the hub: the choices registry says which people (by NHS number) hold a choice that the
policy says excludes them from this project; the pseudonymiser turns those numbers into hub
pseudonyms. The NHS numbers live only inside :meth:`RegistryExclusions.excluded` and are
dropped as soon as they are mapped.

A choice recorded before a query starts applies to that query. The answer is reused only
while nothing it depends on has changed: the registry's change counter (bumped in the same
transaction as every change) and the record store's version (a person's data reaches the store
only after the pseudonymiser knows them, so a cached mapping holds everyone in that version).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from confide.access.model import ProjectGrant
from confide.choices.model import Choice
from confide.choices.policy import Terms, terms
from confide.common.errors import InvalidInput

OUTPUT_FORMS = {"rounding": "aggregate", "dp": "dp_aggregate"}
_CACHED = 32  # answers kept (keyed by registry change counter, store version, choices)


class ProjectRefusedByPolicy(InvalidInput):
    """The policy refuses the whole project's use (e.g. insurance or marketing)."""


@dataclass(frozen=True)
class Exclusions:
    """Hub pseudonyms to leave out of a project's views, and the policy terms that chose them."""

    pseudonyms: pa.Array
    terms: Terms
    digest: str = field(default="")

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", pseudonyms_digest(self.pseudonyms))


def pseudonyms_digest(pseudonyms: pa.Array) -> str:
    """A fingerprint of a set of hub pseudonyms (order and duplicates ignored)."""
    values = sorted(set(pa.array(pseudonyms, pa.string()).to_pylist()))
    return hashlib.sha256("\n".join(values).encode()).hexdigest()


class ExclusionSource(Protocol):
    def excluded(
        self, grant: ProjectGrant, output_form: str, records_version: int | None = None
    ) -> Exclusions:
        """The people to leave out of ``grant``'s views now (``output_form``: a policy form;
        ``records_version``: the record-store version the query will read)."""
        ...


class HoldersSource(Protocol):
    """The part of the choices registry used here."""

    def holders(self, choices: Iterable[Choice]) -> np.ndarray: ...

    def version(self) -> int: ...


class PseudonymLookup(Protocol):
    """The part of the pseudonymiser used here."""

    def pseudonyms_for(self, nhs_numbers: list[str]) -> list[str | None]: ...


def project_terms(grant: ProjectGrant, output_form: str, policy_preset: str) -> Terms:
    """The policy's terms for this project and output form; refused projects raise."""
    found = terms(
        grant.purpose.value,
        grant.recipient_kind.value,
        grant.legal_basis.value,
        output_form,
        policy_preset,
    )
    if found.refused:
        raise ProjectRefusedByPolicy(f"The choices policy refuses this use: {found.refused}.")
    return found


class RegistryExclusions:
    """Exclusions from the choices registry and the pseudonymiser (given as objects, so the
    TRE never imports either party's internals)."""

    def __init__(
        self,
        registry: HoldersSource,
        pseudonymiser: PseudonymLookup,
        policy_preset: str = "strict",
    ) -> None:
        self.registry = registry
        self.pseudonymiser = pseudonymiser
        self.policy_preset = policy_preset
        self._cache: OrderedDict[tuple, pa.Array] = OrderedDict()
        self._lock = threading.Lock()

    def excluded(
        self, grant: ProjectGrant, output_form: str, records_version: int | None = None
    ) -> Exclusions:
        found = project_terms(grant, output_form, self.policy_preset)
        if records_version is None:
            return Exclusions(self._pseudonyms(found), found)
        # The counter is read before the holders, so a change landing in between can only
        # make the cached answer newer than its key, never older.
        key = (self.registry.version(), records_version, tuple(sorted(found.excluding)))
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            cached = Exclusions(self._pseudonyms(found), found)
            with self._lock:
                self._cache[key] = cached
                while len(self._cache) > _CACHED:
                    self._cache.popitem(last=False)
        return Exclusions(cached.pseudonyms, found, cached.digest)

    def _pseudonyms(self, found: Terms) -> pa.Array:
        numbers = self.registry.holders(found.excluding)
        if len(numbers) == 0:
            return pa.array([], pa.string())
        texts = np.char.zfill(np.asarray(numbers, dtype=np.int64).astype(str), 10).tolist()
        mapped = self.pseudonymiser.pseudonyms_for(texts)
        del texts
        known = sorted({pseudonym for pseudonym in mapped if pseudonym is not None})
        return pa.array(known, pa.string())
