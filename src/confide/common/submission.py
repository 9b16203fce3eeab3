"""The submission format shared by the practice agent (writer) and the hub (reader).

A submission is a folder ``<submission_id>/`` holding Parquet files of minimised clinical data
keyed by a submission-local ``ref``, sealed identity batches, and ``manifest.json``: counts,
the SHA-256 of every file, and an Ed25519 signature by the source over the manifest's canonical
bytes. The manifest is written last, so a half-written submission has no valid manifest.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from confide.common import canonical
from confide.common.errors import SubmissionRejected

FORMAT = "confide-submission"
VERSION = 1
MANIFEST = "manifest.json"
CLINICAL_TABLES = ("registrations", "events", "medications", "episodes", "deaths")


def key_id(public_key: bytes) -> str:
    """A short, stable name for a public key (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the manifest without its ``signature`` member."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return canonical.dumps(body)


def sign_manifest(manifest: dict[str, Any], signing_key: bytes) -> dict[str, Any]:
    key = SigningKey(signing_key)
    signature = key.sign(signed_bytes(manifest)).signature
    return {
        **manifest,
        "signature": {
            "alg": "ed25519",
            "key_id": key_id(bytes(key.verify_key)),
            "value": base64.b64encode(signature).decode(),
        },
    }


def read_manifest(folder: Path) -> dict[str, Any]:
    """Parse and shape-check a manifest; anything wrong rejects the submission with a reason."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise SubmissionRejected(
            f"{folder.resolve()} is not a submission folder.",
            hint="Give the folders `confide practice extract` wrote (under practice/*/outbox).",
        )
    if not path.exists():
        raise SubmissionRejected(
            f"{folder.resolve()} has no manifest.json: the upload is incomplete.",
            hint="Upload the whole submission folder again; the manifest is written last.",
        )
    try:
        manifest = canonical.loads(path.read_bytes())
    except ValueError:
        raise SubmissionRejected(
            "manifest.json is not valid JSON (the upload may be truncated)."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SubmissionRejected("manifest.json does not describe a Confide submission.")
    if manifest.get("version") != VERSION:
        raise SubmissionRejected(
            f"Submission format version {manifest.get('version')!r} is not supported "
            f"(this hub reads version {VERSION})."
        )
    for member in ("submission_id", "source", "created_at", "files", "signature"):
        if member not in manifest:
            raise SubmissionRejected(f"manifest.json lacks {member!r}.")
    return manifest


def verify_signature(manifest: dict[str, Any], verify_key: bytes) -> None:
    sig = manifest.get("signature") or {}
    if sig.get("alg") != "ed25519":
        raise SubmissionRejected("The submission is not signed with Ed25519.")
    try:
        VerifyKey(verify_key).verify(signed_bytes(manifest), base64.b64decode(sig["value"]))
    except (BadSignatureError, ValueError, KeyError, TypeError):
        raise SubmissionRejected(
            "The submission's signature does not match the key enrolled for its source: "
            "it was altered after signing, or it was not made by that source.",
            hint="Re-run the extract at the practice; if this repeats, report it to the "
            "Confide operators as a possible forgery.",
        ) from None


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every listed file present with its signed hash; nothing else expected."""
    for name, meta in manifest["files"].items():
        if "/" in name or name.startswith("."):
            raise SubmissionRejected(f"manifest lists an unsafe file name {name!r}.")
        path = folder / name
        if not path.exists():
            raise SubmissionRejected(f"{name} is listed in the manifest but missing.")
        if path.stat().st_size != meta.get("bytes") or file_digest(path) != meta.get("sha256"):
            raise SubmissionRejected(
                f"{name} does not match its signed hash: the upload is damaged or incomplete.",
                hint="Upload the submission again.",
            )
