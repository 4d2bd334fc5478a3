"""raceway.wire: every message type survives encode -> decode unchanged (hypothesis)."""

from __future__ import annotations

import functools
import json
import types
import typing
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raceway import wire
from raceway._events import EVENT_TYPES

finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for values of ``tp`` that JSON can carry (resolved from the type hints)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return json_values
    if tp is float:
        return finite
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers()
    if tp is str:
        return st.text()
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(a) for a in args))
    if tp is type(None):
        return st.none()
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
        return st.tuples(*(strategy_for(a) for a in args))
    if origin is dict:
        return st.dictionaries(st.text(), strategy_for(args[1]), max_size=3)
    if attrs.has(tp):
        return builds(tp)
    raise NotImplementedError(f"no strategy for {tp!r}")


@functools.cache
def builds(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in attrs.fields(cls)}
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


def test_every_event_type_is_a_wire_message() -> None:
    assert set(EVENT_TYPES) <= set(wire.MESSAGE_TYPES)
    assert {"provider_cooldown", "provider_recovered", "hello", "snapshot", "dropped", "stats"} <= set(
        wire.MESSAGE_TYPES
    )


@pytest.mark.parametrize("kind", sorted(wire.MESSAGE_TYPES))
@settings(max_examples=60)
@given(data=st.data())
def test_encode_then_decode_gives_the_original(kind: str, data: st.DataObject) -> None:
    message = data.draw(builds(wire.MESSAGE_TYPES[kind]))
    line = wire.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one message, one line
    assert json.loads(line)["type"] == kind
    assert wire.decode(line) == message
