"""The codec: what it encodes, and the errors for what it cannot."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

from persistence import codec
from persistence.errors import SerializationError


def nested(depth: int) -> list[Any]:
    root: list[Any] = []
    inner = root
    for _ in range(depth):
        child: list[Any] = []
        inner.append(child)
        inner = child
    return root


def test_a_cycle_is_a_serialization_error_naming_where() -> None:
    value: dict[str, Any] = {"items": [1, 2]}
    value["items"].append(value)
    with pytest.raises(SerializationError, match=r"a reference cycle.*at order\['items'\]\[2\]"):
        codec.encode(value, where="order")


def test_a_cycle_through_a_dataclass_is_named() -> None:
    @dataclasses.dataclass
    class Node:
        child: Any = None

    node = Node()
    node.child = [node]
    with pytest.raises(SerializationError, match=r"a reference cycle.*at result\.child\[0\]"):
        codec.encode(node, where="result")


def test_too_deep_a_value_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="nested deeper than the codec allows"):
        codec.encode(nested(2 * sys.getrecursionlimit()), where="the result")


def test_too_deep_bytes_do_not_decode() -> None:
    data = b"\x91" * (2 * sys.getrecursionlimit()) + b"\xc0"
    with pytest.raises(SerializationError, match="nested too deeply"):
        codec.decode(data)
    with pytest.raises(SerializationError, match="nested too deeply"):
        codec.decode(data, list[Any])


def test_a_shared_value_is_not_a_cycle() -> None:
    shared = [1, 2]
    assert codec.decode(codec.encode({"a": shared, "b": shared})) == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(SerializationError, match=r"cannot encode object at v\['b'\]\[2\]"):
        codec.encode({"a": shared, "b": [*shared, object()]}, where="v")


def test_an_unencodable_type_is_named_with_its_place() -> None:
    with pytest.raises(SerializationError, match=r"cannot encode object at x\[0\]\['k'\]"):
        codec.encode([{"k": object()}], where="x")
