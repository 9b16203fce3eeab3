"""Who must be left out of a project's views, asked afresh for every query.

The composition is choices → pseudonymiser → hub pseudonyms, and it happens here, in the TRE,
never in the hub: the choices registry says which people (by NHS number) hold a choice that the
policy says excludes them from this project; the pseudonymiser turns those numbers into hub
pseudonyms. The NHS numbers live only inside :meth:`RegistryExclusions.excluded` and are
dropped as soon as they are mapped. There is no cache: a choice recorded before a query starts
applies to that query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from confide.access.model import ProjectGrant
from confide.choices.model import Choice
from confide.choices.policy import Terms, terms
from confide.common.errors import InvalidInput

OUTPUT_FORMS = {"rounding": "aggregate", "dp": "dp_aggregate"}


class ProjectRefusedByPolicy(InvalidInput):
    """The policy refuses the whole project's use (e.g. insurance or marketing)."""


@dataclass(frozen=True)
class Exclusions:
    """Hub pseudonyms to leave out of a project's views, and the policy terms that chose them."""

    pseudonyms: pa.Array
    terms: Terms


class ExclusionSource(Protocol):
    def excluded(self, grant: ProjectGrant, output_form: str) -> Exclusions:
        """The people to leave out of ``grant``'s views now (``output_form``: a policy form)."""
        ...


class HoldersSource(Protocol):
    """The part of the choices registry used here."""

    def holders(self, choices: Iterable[Choice]) -> np.ndarray: ...


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

    def excluded(self, grant: ProjectGrant, output_form: str) -> Exclusions:
        found = project_terms(grant, output_form, self.policy_preset)
        numbers = self.registry.holders(found.excluding)
        if len(numbers) == 0:
            return Exclusions(pa.array([], pa.string()), found)
        texts = np.char.zfill(np.asarray(numbers, dtype=np.int64).astype(str), 10).tolist()
        mapped = self.pseudonymiser.pseudonyms_for(texts)
        del texts
        known = sorted({p for p in mapped if p is not None})
        return Exclusions(pa.array(known, pa.string()), found)
