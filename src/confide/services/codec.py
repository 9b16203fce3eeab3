"""Method arguments and results as bytes, for calls between parties: safe by construction.

Plain JSON values pass as themselves; everything else is tagged (``{"$": tag, "v": value}``):
bytes, tuples, sets, dicts (keys of any encodable type), dates, date-times, paths, NumPy
arrays, Arrow tables (as Arrow IPC) and, from an explicit allowlist only, the project's own
dataclasses and enums. Nothing else is accepted, in either direction: no class is looked up by
a name a sender chose unless the allowlist names it, and nothing is ever unpickled.

A :class:`~confide.common.errors.ConfideError` raised by a party crosses back as the same class
(a subclass already loaded in the receiving process, else ``ConfideError`` itself) with its
message and hint, so a command fails with the same clear words on either transport.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
from collections.abc import Iterator, KeysView, ValuesView
from datetime import date, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import numpy as np
import orjson
import pyarrow as pa

from confide.common.errors import ConfideError

# The project's own types that may cross between parties ("module:QualifiedName").
ALLOWED = (
    "confide.choices.model:Choice",
    "confide.choices.model:Channel",
    "confide.choices.model:Actor",
    "confide.choices.model:Choices",
    "confide.choices.model:Proxy",
    "confide.choices.model:ChoiceEvent",
    "confide.choices.model:ChangeRequest",
    "confide.choices.registry:DemographicRecord",
    "confide.pseudonymiser.service:Type1Change",
    "confide.hub.ingest:IngestResult",
    "confide.hub.ingest:Erasure",
    "confide.ledger.entries:Entry",
    "confide.ledger.store:TreeHead",
    "confide.ledger.checkpoint:Checkpoint",
    "confide.access.model:Role",
    "confide.access.model:Purpose",
    "confide.access.model:RecipientKind",
    "confide.access.model:LegalBasis",
    "confide.access.model:ProjectStatus",
    "confide.access.model:Organisation",
    "confide.access.model:Person",
    "confide.access.model:Principal",
    "confide.access.tokens:IssuedToken",
    "confide.access.model:ProjectApplication",
    "confide.access.model:Project",
    "confide.access.model:ProjectGrant",
    "confide.access.protection:ProtectionMode",
    "confide.access.protection:OutputProtection",
    "confide.tre.outcomes:QueryOutcome",
)


class NotEncodable(TypeError):
    """A value of a type that may not cross between parties (a wiring defect)."""


@cache
def _allowed() -> dict[str, type]:
    found: dict[str, type] = {}
    for name in ALLOWED:
        module, _, qualname = name.partition(":")
        try:
            target: Any = importlib.import_module(module)
        except ImportError:  # a party not installed here: its types never arrive
            continue
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if isinstance(target, type):
            found[name] = target
    return found


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _tag(tag: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"$": tag, "v": value, **extra}


def to_plain(value: Any) -> Any:
    """``value`` as JSON-ready data (raises :class:`NotEncodable` for anything not allowed)."""
    if isinstance(value, Enum):
        return _structured(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | Iterator | KeysView | ValuesView):  # an iterable arrives a list
        return [to_plain(v) for v in value]
    if isinstance(value, MappingProxyType):
        value = dict(value)
    if isinstance(value, tuple | set | frozenset | dict) or dataclasses.is_dataclass(value):
        return _structured(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _tag("bytes", base64.b64encode(bytes(value)).decode())
    if isinstance(value, datetime):
        return _tag("datetime", value.isoformat())
    if isinstance(value, date):
        return _tag("date", value.isoformat())
    if isinstance(value, Path):
        return _tag("path", str(value))
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, np.ndarray):
        return _tag("ndarray", [to_plain(v) for v in value.tolist()], dtype=str(value.dtype))
    if isinstance(value, pa.Table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, value.schema) as writer:
            writer.write_table(value)
        return _tag("arrow", base64.b64encode(sink.getvalue().to_pybytes()).decode())
    raise NotEncodable(f"a {type(value).__name__} may not cross between parties")


def _structured(value: Any) -> dict[str, Any]:
    if isinstance(value, tuple) and not dataclasses.is_dataclass(value):
        return _tag("tuple", [to_plain(v) for v in value])
    if isinstance(value, set | frozenset):
        return _tag("set", [to_plain(v) for v in value], frozen=isinstance(value, frozenset))
    if isinstance(value, dict):
        return _tag("map", [[to_plain(k), to_plain(v)] for k, v in value.items()])
    cls = type(value)
    name = _name(cls)
    if _allowed().get(name) is not cls:
        raise NotEncodable(f"a {cls.__name__} may not cross between parties")
    if isinstance(value, Enum):
        return _tag("enum", to_plain(value.value), c=name)
    fields = {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return _tag("dc", fields, c=name)


def from_plain(data: Any) -> Any:
    """The value :func:`to_plain` made (raises :class:`NotEncodable` for a foreign tag)."""
    if isinstance(data, list):
        return [from_plain(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag, value = data.get("$"), cast(Any, data.get("v"))
    match tag:
        case "tuple":
            return tuple(from_plain(v) for v in value)
        case "set":
            items = (from_plain(v) for v in value)
            return frozenset(items) if data.get("frozen") else set(items)
        case "map":
            return {from_plain(k): from_plain(v) for k, v in value}
        case "bytes":
            return base64.b64decode(value)
        case "datetime":
            return datetime.fromisoformat(value)
        case "date":
            return date.fromisoformat(value)
        case "path":
            return Path(value)
        case "ndarray":
            return np.asarray(from_plain(value), dtype=_element_type(data.get("dtype")))
        case "arrow":
            table = pa.ipc.open_stream(base64.b64decode(value)).read_all()
            table.validate(full=True)  # offsets and lengths checked before anything reads them
            return table
        case "enum" | "dc":
            cls = _allowed().get(str(data.get("c")))
            if cls is None:
                raise NotEncodable("a type that may not cross between parties")
            if tag == "enum":
                return cls(from_plain(value))
            return _dataclass(cls, {k: from_plain(v) for k, v in value.items()})
    raise NotEncodable("data that is not an encoded value")


def _element_type(name: Any) -> np.dtype | str:
    """An array's element type as sent: numbers and booleans as named; strings as wide as
    their values (a named width could ask for gigabytes per element); nothing else."""
    kind = np.dtype(name).kind
    if kind in "biuf":
        return np.dtype(name)
    if kind in "US":
        return kind
    raise NotEncodable("an array of a type that may not cross between parties")


def _dataclass(cls: type, fields: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    if set(fields) - set(known):
        raise NotEncodable(f"fields a {cls.__name__} does not have")
    made = cls(**{k: v for k, v in fields.items() if known[k].init})
    for k, v in fields.items():
        if not known[k].init:
            object.__setattr__(made, k, v)
    return made


def dumps(value: Any) -> bytes:
    return orjson.dumps(to_plain(value))


def loads(data: bytes) -> Any:
    """The value ``data`` encodes (raises :class:`NotEncodable` for anything else)."""
    try:
        return from_plain(orjson.loads(data))
    except NotEncodable:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, pa.ArrowException):
        raise NotEncodable("data that is not an encoded value") from None


# -- errors -------------------------------------------------------------------------------
def _error_classes(root: type[ConfideError] = ConfideError) -> Iterator[type[ConfideError]]:
    yield root
    for sub in root.__subclasses__():
        yield from _error_classes(sub)


def error_to_plain(exc: ConfideError) -> dict[str, Any]:
    return {"class": _name(type(exc)), "message": exc.message, "hint": exc.hint}


def error_from_plain(data: dict[str, Any]) -> ConfideError:
    """The same error class (when loaded here and a ``ConfideError``), message and hint."""
    wanted = str(data.get("class", ""))
    cls = next((c for c in _error_classes() if _name(c) == wanted), ConfideError)
    error = cls.__new__(cls)
    ConfideError.__init__(error, str(data.get("message", "")), hint=data.get("hint"))
    return error
