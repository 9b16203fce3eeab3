"""The ledger's public HTTP API, in the spirit of Certificate Transparency's (RFC 6962 s. 4).

``make_router(ledger)`` returns an ``APIRouter`` the web app mounts under ``/api/ledger``.
Everything is public and read-only. Responses that can never change (entries below the tree
size, proofs for a given size, the key) are marked cacheable for a year; the checkpoint for a
few seconds. Each entry is served as the exact bytes hashed into its leaf (base64), so anyone
can rebuild the tree without Confide's code. Only entries a signed checkpoint covers are served,
and the checkpoint carries the cosignatures of the witnesses that have checked it.
"""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.

import base64
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from confide.common.errors import ConfideError, NotFound
from confide.ledger.checkpoint import parse
from confide.ledger.log import Ledger
from confide.ledger.witnessing import load_witnesses

MAX_PAGE = 1000
IMMUTABLE = "public, max-age=31536000, immutable"
FRESH = "public, max-age=5"


class ErrorOut(BaseModel):
    detail: str


class CheckpointOut(BaseModel):
    size: int = Field(description="Number of entries in the log.")
    root: str = Field(description="RFC 6962 Merkle tree head of those entries, hex.")
    checkpoint: str = Field(
        description="The signed checkpoint (C2SP tlog-checkpoint note), followed by the "
        "cosignature lines of the witnesses that checked it (C2SP tlog-cosignature)."
    )
    cosigned_by: list[str] = Field(
        description="Names of the witnesses whose cosignatures the checkpoint carries."
    )


class WitnessOut(BaseModel):
    name: str = Field(description="The witness's key name, as in its cosignature lines.")
    verifier_key: str = Field(description="Its verifier key: name+key ID+base64(0x04||key).")


class WitnessesOut(BaseModel):
    witnesses: list[WitnessOut] = Field(
        description="The witnesses this log asks to cosign each checkpoint. Pin their keys "
        "from their operators, not from here: this list only says whom the log asks."
    )


class EntryOut(BaseModel):
    index: int = Field(description="Position in the log, from 0.")
    leaf_input: str = Field(
        description="Base64 of the exact bytes hashed into the leaf: SHA-256(0x00 || bytes)."
    )


class EntriesOut(BaseModel):
    entries: list[EntryOut] = Field(
        description=f"Entries start <= index < end, at most {MAX_PAGE}; ask again from the "
        "last index + 1 for more."
    )


class InclusionOut(BaseModel):
    index: int = Field(description="Index of the entry with that leaf hash.")
    size: int = Field(description="The tree size the proof is for.")
    audit_path: list[str] = Field(description="RFC 9162 inclusion proof, hex, leaf side first.")


class ConsistencyOut(BaseModel):
    consistency: list[str] = Field(description="RFC 9162 consistency proof, hex.")


class PublicKeyOut(BaseModel):
    origin: str = Field(description="The log's origin: the first line of every checkpoint.")
    algorithm: str = Field(description="Always Ed25519.")
    key_name: str = Field(description="The signed-note key name in signature lines.")
    key_hash: str = Field(description="First 4 bytes of SHA-256(name || 0x0A || 0x01 || key).")
    public_key: str = Field(description="The 32-byte Ed25519 public key, base64.")
    verifier_key: str = Field(description="Signed-note verifier key: name+hash+base64(0x01||key).")


_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut}, 404: {"model": ErrorOut}}


def _hex(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise HTTPException(400, f"{what} must be 64 hexadecimal digits (a SHA-256 hash).")
    return raw


def cosigners(note: str) -> list[str]:
    """Names on the note's signature lines other than the log's own."""
    head, lines = parse(note)
    return sorted({line.name for line in lines if line.name != head.origin})


def _size(ledger: Ledger, size: int | None) -> int:
    current = ledger.checkpoint().size  # nothing past the latest signed checkpoint is served
    if size is None:
        return current
    if not 0 <= size <= current:
        raise HTTPException(400, f"size must be between 0 and the log's size ({current}).")
    return size


def make_router(ledger: Ledger) -> APIRouter:
    """The ledger's routes, bound to one open :class:`Ledger`."""
    router = APIRouter(tags=["ledger"])

    @router.get("/checkpoint", response_model=CheckpointOut, summary="Latest signed checkpoint")
    def get_checkpoint(response: Response) -> CheckpointOut:
        """The log's size and root, the checkpoint signed over them when they were appended, and
        the cosignatures witnesses have added to it."""
        signed = ledger.checkpoint()
        response.headers["Cache-Control"] = FRESH
        return CheckpointOut(
            size=signed.size,
            root=signed.root.hex(),
            checkpoint=signed.text,
            cosigned_by=cosigners(signed.text),
        )

    @router.get("/witnesses", response_model=WitnessesOut, summary="The witnesses it asks")
    def get_witnesses(response: Response) -> WitnessesOut:
        """The witnesses this log asks to cosign its checkpoints."""
        response.headers["Cache-Control"] = FRESH
        listed = [spec.verifier for spec in load_witnesses(ledger.folder)]
        return WitnessesOut(
            witnesses=[WitnessOut(name=w.name, verifier_key=w.vkey) for w in listed]
        )

    @router.get(
        "/entries", response_model=EntriesOut, responses=_ERRORS, summary="Entries by range"
    )
    def get_entries(
        response: Response,
        start: int = Query(description="First index wanted (from 0)."),
        end: int = Query(description="One past the last index wanted (exclusive)."),
    ) -> EntriesOut:
        """The entries ``start <= index < end`` as they were hashed (page of at most 1000)."""
        size = _size(ledger, None)
        if start < 0 or end <= start:
            raise HTTPException(400, "Ask for 0 <= start < end.")
        if start >= size:
            raise HTTPException(400, f"start must be below the log's size ({size}).")
        stop = min(end, size, start + MAX_PAGE)
        rows = ledger.store.entries(start, stop)
        response.headers["Cache-Control"] = IMMUTABLE if stop == end else FRESH
        return EntriesOut(
            entries=[
                EntryOut(index=i, leaf_input=base64.b64encode(data).decode()) for i, data in rows
            ]
        )

    @router.get(
        "/proof/inclusion",
        response_model=InclusionOut,
        responses=_ERRORS,
        summary="Inclusion proof by leaf hash",
    )
    def get_inclusion(
        response: Response,
        leaf_hash: str = Query(description="SHA-256(0x00 || leaf_input), hex."),
        size: int | None = Query(None, description="Tree size (default: the current size)."),
    ) -> InclusionOut:
        """The audit path proving the entry with ``leaf_hash`` is in the tree of ``size``."""
        wanted = _hex(leaf_hash, "leaf_hash")
        tree = _size(ledger, size)
        try:
            index, path = ledger.inclusion_proof(wanted, tree)
        except NotFound as exc:
            raise HTTPException(404, exc.message) from None
        except ConfideError as exc:
            raise HTTPException(400, exc.message) from None
        response.headers["Cache-Control"] = IMMUTABLE if size is not None else FRESH
        return InclusionOut(index=index, size=tree, audit_path=[h.hex() for h in path])

    @router.get(
        "/proof/consistency",
        response_model=ConsistencyOut,
        responses=_ERRORS,
        summary="Consistency proof between two sizes",
    )
    def get_consistency(
        response: Response,
        first: int = Query(description="The smaller tree size."),
        second: int = Query(description="The larger tree size."),
    ) -> ConsistencyOut:
        """Proof that the tree of ``first`` entries is a prefix of the tree of ``second``."""
        tree = _size(ledger, second)
        if not 0 <= first <= tree:
            raise HTTPException(400, "Ask for 0 <= first <= second.")
        proof = ledger.consistency_proof(first, tree)
        response.headers["Cache-Control"] = IMMUTABLE
        return ConsistencyOut(consistency=[h.hex() for h in proof])

    @router.get("/public-key", response_model=PublicKeyOut, summary="The checkpoint signing key")
    def get_public_key(response: Response) -> PublicKeyOut:
        """The Ed25519 key that signs checkpoints, in raw and signed-note form."""
        v = ledger.verifier
        response.headers["Cache-Control"] = "public, max-age=86400"
        return PublicKeyOut(
            origin=ledger.signer.name,
            algorithm="Ed25519",
            key_name=v.name,
            key_hash=v.key_hash.hex(),
            public_key=base64.b64encode(v.public_key).decode(),
            verifier_key=v.vkey,
        )

    return router
