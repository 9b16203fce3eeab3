"""What may cross between parties, and how: values come back equal, foreign types never."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from loopback import free_port

from confide.access.errors import Forbidden
from confide.choices.model import Channel, Choice, Choices
from confide.common.errors import ConfideError, NotFound
from confide.common.home import Home
from confide.composition import compose
from confide.hub.ingest import Erasure
from confide.services import codec
from confide.services.rpc import RemoteParty, ServiceUnavailable
from confide.services.run import party_methods
from confide.services.signing import Signer, party_key


def test_values_cross_unchanged():
    table = pa.table({"ref": pa.array([1, 2], pa.int32()), "pseudonym": ["a", None]})
    value = {
        "bytes": b"\x00\xff",
        "tuple": (1, "two"),
        "set": {3, 4},
        "frozen": frozenset({"x"}),
        "day": date(2024, 2, 29),
        "moment": datetime(2024, 2, 29, 12, 30, tzinfo=UTC),
        "path": Path("/a/b"),
        Choice.SHARE_NOTHING: {Channel.ONLINE: True},
        "choices": Choices(share_nothing=True),
        "erasure": Erasure("e1", 3),
        "array": np.array([True, False]),
        "nested": [None, 1.5, [b"y"]],
    }
    back = codec.loads(codec.dumps(value))
    table_back = codec.loads(codec.dumps(table))
    assert table_back.equals(table) and table_back.schema == table.schema
    array = back.pop("array")
    assert array.dtype == np.bool_ and array.tolist() == [True, False]
    value.pop("array")
    assert back == value
    assert isinstance(back[Choice.SHARE_NOTHING], dict) and type(back["tuple"]) is tuple
    assert codec.loads(codec.dumps(x for x in (1, 2))) == [1, 2]  # an iterable arrives a list


class Foreign:
    pass


@pytest.mark.parametrize("value", [Foreign(), object(), lambda: 1, ValueError("x")])
def test_anything_not_allowed_is_refused_on_the_way_out(value):
    with pytest.raises(codec.NotEncodable):
        codec.dumps(value)


@pytest.mark.parametrize(
    "data",
    [
        {"$": "dc", "c": "builtins:object", "v": {}},
        {"$": "dc", "c": "subprocess:Popen", "v": {"args": ["true"]}},
        {"$": "enum", "c": "os:system", "v": "true"},
        {"$": "pickle", "v": "gASVAAAAAAAAAAA="},
        {"$": "dc", "c": "confide.hub.ingest:Erasure", "v": {"erasure_id": "e", "extra": 1}},
        {"plain": "dict"},
    ],
)
def test_a_foreign_or_malformed_type_is_refused_on_the_way_in(data):
    with pytest.raises(codec.NotEncodable):
        codec.loads(orjson.dumps(data))


def test_errors_cross_as_the_same_class_with_message_and_hint():
    for error in (NotFound("Nothing here.", hint="Look elsewhere."), Forbidden("No.")):
        back = codec.error_from_plain(codec.error_to_plain(error))
        assert type(back) is type(error)
        assert (back.message, back.hint, back.exit_code) == (
            error.message,
            error.hint,
            error.exit_code,
        )
    forged = codec.error_from_plain({"class": "builtins:SystemExit", "message": "m"})
    assert type(forged) is ConfideError and forged.message == "m"


def test_a_service_not_answering_is_a_clear_error(tmp_path):
    client = RemoteParty(
        "hub", f"http://127.0.0.1:{free_port()}", Signer("choices", party_key(tmp_path)), timeout=2
    )
    with pytest.raises(ServiceUnavailable, match="The hub service is not answering"):
        client.erase(["someone"])
    with pytest.raises(AttributeError):
        client.close_everything  # noqa: B018 - only allowlisted methods exist
    assert not client.healthy()
    client.close()


def _crosses(hint: object, seen: set[type]) -> list[str]:
    """The types named in a type hint (and in its dataclasses' fields) the codec refuses."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is not None:
        inner = [a for a in args if a is not Ellipsis and not isinstance(a, list)]
        return [bad for a in inner for bad in _crosses(a, seen)]
    if hint is typing.Any or hint is None or hint is type(None):
        return []
    if not isinstance(hint, type):
        return [repr(hint)]
    plain = (bool, int, float, str, bytes, list, tuple, set, frozenset, dict, date, datetime)
    if issubclass(hint, (*plain, Path, np.ndarray, pa.Table)):
        return []
    name = f"{hint.__module__}:{hint.__qualname__}"
    if codec._allowed().get(name) is not hint:
        return [name]
    if not dataclasses.is_dataclass(hint) or hint in seen:
        return []
    seen.add(hint)
    fields = typing.get_type_hints(hint).values()
    return [bad for field in fields for bad in _crosses(field, seen)]


def test_every_allowlisted_method_returns_what_the_codec_takes(tmp_path):
    """Each method a party serves to others (by its return type hint) answers with types
    that may cross between parties: a new result type is allowlisted, or the call fails."""
    refused = {}
    with compose(Home.at(tmp_path / "home")) as parties:
        for party in ("choices", "pseudonymiser", "hub", "access", "ledger"):
            for name, method in party_methods(parties, party).items():
                if not callable(method) or isinstance(method, type):
                    refused[f"{party}.{name}"] = ["not a method"]
                    continue
                function = method if hasattr(method, "__annotations__") else method.__call__
                hint = typing.get_type_hints(function).get("return", typing.Any)
                if bad := _crosses(hint, set()):
                    refused[f"{party}.{name}"] = bad
    assert refused == {}
