"""Linking records across sources to one person.

Today: deterministic on a valid NHS number (the same number gives the same pseudonym in every
source). Records without a usable NHS number are not guessed at: they wait in the pending-linkage
table, with the identifiers they came with, for the probabilistic linker (a later addition that
plugs in as another ``Linker``, e.g. Splink over date of birth, sex and postcode).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa


class Linker(Protocol):
    def link(self, identities: pa.Table, valid: np.ndarray) -> np.ndarray:
        """Which rows can be linked (True) with the evidence available."""


class DeterministicLinker:
    """Link exactly the rows whose NHS number passes the modulus 11 check."""

    def link(self, identities: pa.Table, valid: np.ndarray) -> np.ndarray:
        return valid
