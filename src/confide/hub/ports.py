"""What the hub needs from other parties, as interfaces (no party's internals imported)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import pyarrow as pa


class PseudonymService(Protocol):
    def pseudonymise_submission(
        self, source: str, submission_id: str, sealed: Iterable[bytes]
    ) -> pa.Table:
        """Sealed identity batches in; ``ref, pseudonym, birth_year, birth_month, sex, area,
        status, reason, match_weight, linked_by`` out."""

    def resolutions(self, after: int) -> pa.Table:
        """Records linked after their submission, with a sequence number above ``after``:
        ``seq, source, submission_id`` and the columns above (``status`` is ``objector`` for
        people who have since chosen to share nothing)."""
