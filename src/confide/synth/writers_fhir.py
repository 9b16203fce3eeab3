"""FHIR exports: bulk NDJSON, JSON Bundles of a few hundred patients, or FHIR XML Bundles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
from lxml import etree

from confide.synth.fhir_resources import Item

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_FLUSH = 20_000


def write_ndjson(folder: Path, streams: list[Iterator[Item]]) -> int:
    """One ``<ResourceType>.ndjson`` per type; returns how many resources were written."""
    buffers: dict[str, list[bytes]] = {}
    handles: dict[str, IO[bytes]] = {}
    written = 0
    try:
        for stream in streams:
            for _, res in stream:
                kind = res["resourceType"]
                buf = buffers.setdefault(kind, [])
                buf.append(orjson.dumps(res))
                if len(buf) >= _FLUSH:
                    _flush(folder, handles, kind, buf)
                written += 1
        for kind, buf in buffers.items():
            _flush(folder, handles, kind, buf)
    finally:
        for handle in handles.values():
            handle.close()
    return written


def _flush(folder: Path, handles: dict, kind: str, buf: list[bytes]) -> None:
    if not buf:
        return
    if kind not in handles:
        handles[kind] = (folder / f"{kind}.ndjson").open("wb")
    handles[kind].write(b"\n".join(buf) + b"\n")
    buf.clear()


def _groups(streams: list[Iterator[Item]], size: int, total: int) -> Iterator[list[dict]]:
    """Resources of ``size`` patients at a time, taken in order from each stream."""
    pending: list[Item | None] = [next(s, None) for s in streams]
    for lo in range(0, total, size):
        hi = lo + size
        group: list[dict] = []
        for k, stream in enumerate(streams):
            item = pending[k]
            while item is not None and item[0] < hi:
                group.append(item[1])
                item = next(stream, None)
            pending[k] = item
        yield group


def _bundle(bundle_id: str, resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def write_bundles(folder: Path, streams: list[Iterator[Item]], patients: int, size: int) -> int:
    """``bundle-0001.json`` … each a collection Bundle of up to ``size`` patients."""
    written = 0
    for n, group in enumerate(_groups(streams, size, patients), start=1):
        bundle = _bundle(f"{folder.name}-{n:04d}", group)
        (folder / f"bundle-{n:04d}.json").write_bytes(orjson.dumps(bundle))
        written += len(group)
    return written


def write_xml_bundles(folder: Path, streams: list[Iterator[Item]], patients: int, size: int) -> int:
    """``bundle-0001.xml`` … the same Bundles in FHIR XML."""
    written = 0
    for n, group in enumerate(_groups(streams, size, patients), start=1):
        root = to_xml(_bundle(f"{folder.name}-{n:04d}", group))
        (folder / f"bundle-{n:04d}.xml").write_bytes(
            etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        )
        written += len(group)
    return written


def to_xml(resource: dict) -> etree._Element:
    """A FHIR JSON resource as FHIR XML (values in ``value`` attributes, narrative as XHTML)."""
    root = etree.Element(f"{{{FHIR_NS}}}{resource['resourceType']}", nsmap={None: FHIR_NS})
    _fill(root, resource)
    return root


def _fill(parent: etree._Element, obj: dict) -> None:
    for key, value in obj.items():
        if key == "resourceType":
            continue
        for item in value if isinstance(value, list) else [value]:
            _element(parent, key, item)


def _element(parent: etree._Element, key: str, value: object) -> None:
    if key == "div" and isinstance(value, str):
        parent.append(etree.fromstring(value))
        return
    child = etree.SubElement(parent, f"{{{FHIR_NS}}}{key}")
    if isinstance(value, dict):
        if "resourceType" in value:  # a contained resource, e.g. Bundle.entry.resource
            inner = etree.SubElement(child, f"{{{FHIR_NS}}}{value['resourceType']}")
            _fill(inner, value)
        else:
            _fill(child, value)
    elif isinstance(value, bool):
        child.set("value", "true" if value else "false")
    else:
        child.set("value", str(value))
