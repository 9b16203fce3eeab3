"""FHIR JSON files: a Bundle or a single resource per ``*.json`` file, or NDJSON (one resource
per line, ``*.ndjson``).

A damaged file never stops the read: a ``.json`` file that is not valid JSON (truncated in
transfer, say) becomes one rejection holding the whole file, and the other files are still read;
a bad NDJSON line becomes a rejection for that line and the rest of the file is still read.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

from confide.practice.readers.fhir_resources import Context, FhirCollector


def _json_error(exc: orjson.JSONDecodeError) -> str:
    # orjson's message names the position only, never the content.
    return f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"


def read_json_file(path: Path, collector: FhirCollector) -> None:
    """One ``.json`` file: a Bundle (any type) or a single resource."""
    raw = path.read_bytes()
    ctx = Context(file=path.name, location="", original=lambda: raw)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        collector.reject(ctx, _json_error(exc) + "; is the file complete?")
        return
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        collector.add_bundle(doc, ctx, lambda i: _entry_bytes(doc, i))
    else:
        collector.add(doc, ctx)


def _entry_bytes(bundle: dict[str, Any], index: int) -> bytes:
    return orjson.dumps(bundle["entry"][index])


def read_ndjson_file(path: Path, collector: FhirCollector) -> None:
    """One ``.ndjson`` file, line by line (bulk exports are large: never read whole)."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            ctx = Context(
                file=path.name, location=f"line {number}", original=functools.partial(bytes, line)
            )
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                collector.reject(ctx, _json_error(exc))
                continue
            collector.add(resource, ctx)
