"""Writing a signed submission folder: Parquet tables, sealed identity batches, manifest last."""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from confide.common import canonical
from confide.common.clock import utcnow
from confide.common.sealing import seal_table
from confide.common.submission import (
    FORMAT,
    MANIFEST,
    VERSION,
    file_digest,
    key_id,
    sign_manifest,
)

IDENTITY_BATCH_ROWS = 100_000


def new_submission_id(ods: str, now: datetime) -> str:
    return f"{ods}-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_submission(
    out_dir: Path,
    *,
    ods: str,
    kind: str,
    identities: pa.Table,
    tables: dict[str, pa.Table],
    counts: dict[str, int],
    pseudonymiser_key: bytes,
    signing_key: bytes,
) -> tuple[str, Path]:
    """Write the submission into ``out_dir/<submission_id>/`` atomically; return (id, path)."""
    now = utcnow()
    submission_id = new_submission_id(ods, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{submission_id}.partial"
    tmp.mkdir()
    try:
        names: list[str] = []
        for name, table in tables.items():
            pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
            names.append(f"{name}.parquet")
        for i, start in enumerate(range(0, max(identities.num_rows, 1), IDENTITY_BATCH_ROWS)):
            batch = identities.slice(start, IDENTITY_BATCH_ROWS)
            (tmp / f"identities-{i:04d}.sealed").write_bytes(seal_table(batch, pseudonymiser_key))
            names.append(f"identities-{i:04d}.sealed")
        files: dict[str, Any] = {}
        for name in sorted(names):
            path = tmp / name
            files[name] = {"sha256": file_digest(path), "bytes": path.stat().st_size}
            if name.endswith(".parquet"):
                files[name]["rows"] = pq.ParquetFile(path).metadata.num_rows
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "submission_id": submission_id,
            "source": {"ods": ods, "kind": kind},
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "sealed_to": key_id(pseudonymiser_key),
            "counts": counts,
            "files": files,
        }
        signed = sign_manifest(manifest, signing_key)
        (tmp / MANIFEST).write_bytes(canonical.dumps(signed))
        _fsync_dir(tmp)
        final = out_dir / submission_id
        os.replace(tmp, final)
        _fsync_dir(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return submission_id, final
