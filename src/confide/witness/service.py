"""What a witness does with an ``add-checkpoint`` request (C2SP tlog-witness), in order:

1. read the request (400 when it does not follow the format);
2. know the log by its origin line (404 when it watches no log of that origin);
3. find a signature by a key it trusts for that origin (403 when there is none);
4. refuse an old size above the checkpoint's size (400);
5. then, with the log's entry locked: the old size must be the size it last cosigned (409 with
   its size when not); at the same size the root must be the same (409: a split view); otherwise
   the consistency proof from its root to the new root must verify (422: a fork);
6. record the new checkpoint, then answer with its timestamped cosignature.

A refused request that is validly signed but shows a different tree from the one the witness
cosigned (a split view or a fork) is kept as evidence: it is a signed statement by the log that
contradicts another signed statement by the log.
"""

from __future__ import annotations

from pathlib import Path

from confide.common.errors import ConfideError, InvalidInput
from confide.ledger import checkpoint as cp
from confide.ledger import merkle
from confide.ledger.add_checkpoint import (
    SIZE_TYPE,
    AddCheckpoint,
    RequestMalformed,
    WitnessReply,
)
from confide.ledger.cosignature import CosignatureVerifier, CosignerKey
from confide.witness.keys import KEY_FILE, load_cosigner
from confide.witness.store import Latest, WitnessStore


class WitnessRefusal(ConfideError):
    """A request the witness will not cosign, with the HTTP status the protocol gives it."""

    def __init__(
        self, status: int, message: str, size: int | None = None, evidence: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.size = size  # the witness's latest size, for a 409
        self.evidence = evidence  # why the request proves the log misbehaved, if it does

    def reply(self) -> WitnessReply:
        if self.size is not None:
            return WitnessReply(self.status, f"{self.size}\n", SIZE_TYPE)
        return WitnessReply(self.status, self.message + "\n")


class Witness:
    """One witness: its key, and its memory of every log it watches."""

    def __init__(self, store: WitnessStore, key: CosignerKey) -> None:
        self.store = store
        self.key = key

    @classmethod
    def open(cls, folder: Path, name: str | None = None, *, create: bool = True) -> Witness:
        """The witness whose state is ``folder``: made, with a new key, on first use unless
        ``create`` is false (then a folder with no witness in it is an error)."""
        if not create and not (folder / KEY_FILE).exists():
            raise InvalidInput(
                "There is no witness in that folder.",
                hint="Make one with 'confide witness init --folder ...'.",
            )
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(WitnessStore(folder), load_cosigner(folder, name))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Witness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def verifier(self) -> CosignatureVerifier:
        return self.key.verifier

    def trust(self, origin: str, verifier_key: str) -> cp.Verifier:
        """Watch the log called ``origin``, whose checkpoints are signed by ``verifier_key``."""
        try:
            verifier = cp.Verifier.parse(verifier_key)
            cp.check_name(origin)
        except cp.CheckpointError as exc:
            raise InvalidInput(
                exc.message, hint="Give the log's origin and verifier key."
            ) from None
        self.store.trust(origin, verifier.vkey)
        return verifier

    def respond(self, body: bytes, now: int | None = None) -> WitnessReply:
        """The reply to an ``add-checkpoint`` request body: cosignature lines, or a refusal."""
        try:
            return WitnessReply(200, self.add_checkpoint(body, now))
        except WitnessRefusal as exc:
            return exc.reply()

    def add_checkpoint(self, body: bytes, now: int | None = None) -> str:
        """Check the request and cosign its checkpoint; :class:`WitnessRefusal` if it fails."""
        try:
            request = AddCheckpoint.parse(body)
            head, _ = cp.parse(request.note)
        except (RequestMalformed, cp.CheckpointError) as exc:
            raise WitnessRefusal(400, str(getattr(exc, "message", exc))) from None
        self._check_signed(request.note, head)
        if request.old > head.size:
            raise WitnessRefusal(400, "The old size is larger than the checkpoint's size.")

        def decide(current: Latest | None) -> tuple[int, bytes, str]:
            self._check_extends(request, head, current)
            return head.size, head.root, request.note

        try:
            self.store.advance(head.origin, decide)
        except WitnessRefusal as exc:
            if exc.evidence is not None:  # kept once the log's entry is unlocked again
                self.store.record(head.origin, exc.evidence, body.decode())
            raise
        return self.key.cosign(request.note, now).line

    def _check_signed(self, note: str, head: cp.Checkpoint) -> None:
        keys = self.store.keys_for(head.origin)
        if not keys:
            raise WitnessRefusal(404, "This witness does not watch a log of that origin.")
        for key in keys:
            try:
                cp.verify(note, cp.Verifier.parse(key))
                return
            except cp.CheckpointError:
                continue
        raise WitnessRefusal(403, "The checkpoint carries no valid signature by the log's key.")

    @staticmethod
    def _check_extends(request: AddCheckpoint, head: cp.Checkpoint, current: Latest | None) -> None:
        size = 0 if current is None else current.size
        root = merkle.EMPTY_ROOT if current is None else current.root
        if request.old != size:
            raise WitnessRefusal(409, "The old size is not the size last cosigned.", size)
        if request.old == head.size:
            if head.root != root:
                raise WitnessRefusal(
                    409,
                    "Another tree of this size was cosigned.",
                    size,
                    evidence=f"split view: another root for {size} entries than the one cosigned",
                )
            return
        try:
            merkle.verify_consistency(size, head.size, root, head.root, request.proof)
        except merkle.ProofError as exc:
            raise WitnessRefusal(
                422,
                f"The consistency proof does not verify: {exc}.",
                evidence=f"fork (or a wrong proof): {size} to {head.size} entries",
            ) from None
