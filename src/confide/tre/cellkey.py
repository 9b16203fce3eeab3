"""The cell-key method: the same cell always gets the same answer; near-identical cells get
independent noise.

Each person has a *record key*, a 32-bit number only the TRE knows (from a keyed hash of
their hub pseudonym with the TRE's own secret, so it is the same in every project). A cell's
*cell key* is the sum of its contributors' record keys modulo 2^32: a fixed function of who is
in the cell. The perturbation of a count is read from the published perturbation table at
that cell key, so asking for the same people again gives the same answer (averaging repeats
gains nothing), while a cell that differs by one person has an unrelated cell key and noise
independent of the first (subtracting two cells does not cancel the noise). This is the
method of the Australian Bureau of Statistics' TableBuilder and of the ONS for Census 2021.

Value measures (sums, means, quantiles) are perturbed the same way: a fraction of the
measure's declared bound, scaled by a value read from a second table at the cell key.

The same keyed hash gives each person a 60-bit sketch id with a check value and three bucket
numbers, used by :mod:`confide.tre.differencing`; they are derived here for reference (tests
and the decoder), and computed in SQL by the view builders (:mod:`confide.tre.dialects`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import cache

KEY_SPACE = 1 << 32
HASHES = 4  # each person is in one bucket of each of 4 sub-tables of a sketch
BUCKETS_PER_HASH = 16
BUCKETS = HASHES * BUCKETS_PER_HASH
BUCKET_COLUMNS = tuple(f"__b{i}" for i in range(HASHES))


@dataclass(frozen=True)
class CountPerturbation:
    """A published perturbation table for counts: perturbation ``p`` has probability
    ``probabilities[p + max]``; a cell key ``c`` picks the ``p`` whose cumulative band holds
    ``c / 2^32``. Released counts never fall below the threshold."""

    probabilities: tuple[float, ...]

    @property
    def max(self) -> int:
        return (len(self.probabilities) - 1) // 2

    @property
    def variance(self) -> float:
        return sum(
            probability * (i - self.max) ** 2 for i, probability in enumerate(self.probabilities)
        )

    def rows(self) -> list[tuple[int, float, int, int]]:
        """(perturbation, probability, first cell key, last cell key) rows: the table itself."""
        out = []
        start = 0
        for index, probability in enumerate(self.probabilities):
            end = _band_end(self.probabilities, index)
            out.append((index - self.max, probability, start, end - 1))
            start = end
        return out

    def perturbation(self, cell_key: int) -> int:
        key = cell_key % KEY_SPACE
        for index in range(len(self.probabilities)):
            if key < _band_end(self.probabilities, index):
                return index - self.max
        return self.max


@cache
def _cumulative(probabilities: tuple[float, ...]) -> tuple[int, ...]:
    total = 0.0
    ends = []
    for probability in probabilities:
        total += probability
        ends.append(min(KEY_SPACE, round(total * KEY_SPACE)))
    ends[-1] = KEY_SPACE
    return tuple(ends)


def _band_end(probabilities: tuple[float, ...], index: int) -> int:
    return _cumulative(probabilities)[index]


# Symmetric, mean 0, variance 2.1, at most ±3.
DEFAULT_COUNTS = CountPerturbation((0.05, 0.10, 0.20, 0.30, 0.20, 0.10, 0.05))
VALUE_TABLE_SIZE = 256


def value_table() -> tuple[float, ...]:
    """The published table for value measures: 256 values in [-1, 1] following a triangular
    distribution (mean 0), read at a cell key's second byte."""
    out = []
    for i in range(VALUE_TABLE_SIZE):
        u = (i + 0.5) / VALUE_TABLE_SIZE
        out.append(round((2 * u) ** 0.5 - 1 if u < 0.5 else 1 - (2 * (1 - u)) ** 0.5, 6))
    return tuple(out)


VALUE_TABLE = value_table()


_KIND_SALTS = {"sum": 0x5BD1E995, "mean": 0x27D4EB2F, "quantile": 0x165667B1}


def value_factor(cell_key: int, kind: str) -> float:
    """The value table's entry for a cell key and a kind of measure: the same cell always
    reads the same entry; a sum and a mean of the same people read unrelated ones (so one
    cannot be solved from the other), and neither follows the count's band."""
    mixed = (((cell_key ^ _KIND_SALTS[kind]) % KEY_SPACE) * 0x9E3779B1) % KEY_SPACE
    return VALUE_TABLE[mixed >> 24]


def cell_key(record_key_sum: int) -> int:
    return int(record_key_sum) % KEY_SPACE


# -- the reference derivation of a person's hidden keys ---------------------------------------


@dataclass(frozen=True)
class RecordKeys:
    rkey: int
    sid: int
    chk: int
    buckets: tuple[int, ...]


def record_keys(secret: bytes, hub_pseudonym: str) -> RecordKeys:
    """What the view builders compute in SQL for one person (tests check they agree)."""
    digest = hmac.new(secret, hub_pseudonym.encode(), hashlib.sha256).hexdigest()
    sid = int(digest[:15], 16)
    return RecordKeys(
        rkey=int(digest[15:23], 16), sid=sid, chk=check_of(sid), buckets=buckets_of(sid)
    )


def check_of(sid: int) -> int:
    """The check value of a sketch id: lets a decoder tell one id from a mixture."""
    return int(hashlib.sha256(str(sid).encode()).hexdigest()[:15], 16)


def buckets_of(sid: int) -> tuple[int, ...]:
    """The buckets of a sketch id, one in each sub-table, from independent bits of the id."""
    return tuple(i * BUCKETS_PER_HASH + (sid >> (4 * i)) % BUCKETS_PER_HASH for i in range(HASHES))
