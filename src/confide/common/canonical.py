"""Canonical JSON bytes: the one encoding that is hashed and signed everywhere."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same object always gives the same bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
