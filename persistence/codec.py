"""Encoding of user values (arguments, results, hook payloads, annotation values).

Values are encoded as msgpack with msgspec; never pickle. Supported: None, bool, int, float,
str, bytes, list, tuple, dict, set, frozenset, datetime, date, time, UUID, Decimal, enums,
dataclasses, msgspec Structs and pydantic models. Decoding without a type gives plain values
(lists, dicts, strings for UUID and Decimal); decoding to a type (a return annotation, a
parameter annotation) gives that type back.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import sys
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
import pydantic

from .errors import SerializationError

_SCALARS = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,
    memoryview,
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    uuid.UUID,
    decimal.Decimal,
    enum.Enum,
    msgspec.Struct,
)


def _enc_hook(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="python")
    raise NotImplementedError


def _dec_hook(target: type, value: Any) -> Any:
    if target is object:
        return value
    if isinstance(target, type) and issubclass(target, pydantic.BaseModel):
        return target.model_validate(value)
    raise TypeError(f"cannot decode to {target!r}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_any_decoder = msgspec.msgpack.Decoder(dec_hook=_dec_hook)
_typed_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}


def _find_unencodable(value: Any, path: str, seen: set[int]) -> tuple[str, str] | None:
    """Where, inside ``value``, is the first thing the codec cannot encode?"""
    if isinstance(value, (*_SCALARS, pydantic.BaseModel)):
        return None
    if id(value) in seen:  # shared (or cyclic): already looked at
        return None
    seen.add(id(value))
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool, enum.Enum, uuid.UUID, _dt.date)):
                return f"{path} (a key)", type(key).__qualname__
            found = _find_unencodable(item, f"{path}[{key!r}]", seen)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            found = _find_unencodable(item, f"{path}[{index}]", seen)
            if found:
                return found
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            found = _find_unencodable(getattr(value, field.name), f"{path}.{field.name}", seen)
            if found:
                return found
        return None
    return path, type(value).__qualname__


def _too_deep(value: Any, where: str) -> SerializationError:
    """Why msgspec recursed too deep: a reference cycle (named by its path), or nesting.

    A depth-first walk that keeps, for the current path, each container's id and how it was
    reached; the path is spelled out only for a cycle (building it at every level would cost
    the square of the depth)."""
    path: list[tuple[int, str]] = []  # (id of the container, how it was reached from above)
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    on_path: set[int] = set()
    while stack:
        item, step, depth = stack.pop()
        while len(path) > depth:
            on_path.discard(path.pop()[0])
        if isinstance(item, (*_SCALARS, pydantic.BaseModel)):
            continue
        if id(item) in on_path:
            place = "".join(s for _, s in path) + step
            return SerializationError(
                f"cannot encode {type(item).__name__} (a reference cycle) at {place}: a value "
                "that contains itself cannot be encoded"
            )
        path.append((id(item), step))
        on_path.add(id(item))
        children: list[tuple[Any, str]] = []
        if isinstance(item, Mapping):
            children = [(v, f"[{k!r}]") for k, v in item.items()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            children = [(v, f"[{i}]") for i, v in enumerate(item)]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            children = [(getattr(item, f.name), f".{f.name}") for f in dataclasses.fields(item)]
        stack.extend((child, child_step, depth + 1) for child, child_step in reversed(children))
    return SerializationError(
        f"cannot encode {where}: it is nested deeper than the codec allows "
        f"(about {sys.getrecursionlimit()} levels)"
    )


def encode(value: Any, *, where: str = "value") -> bytes:
    """Encode ``value``; raise SerializationError naming the offending type and its place."""
    try:
        return _encoder.encode(value)
    except RecursionError:
        raise _too_deep(value, where) from None
    except (TypeError, ValueError, OverflowError, NotImplementedError) as exc:
        try:
            found = _find_unencodable(value, where, set())
        except RecursionError:
            found = None
        if found is None:
            raise SerializationError(f"cannot encode {where}: {exc}") from None
        place, type_name = found
        raise SerializationError(
            f"cannot encode {type_name} at {place}: actorflow encodes None, bool, int, float, "
            "str, bytes, list, tuple, dict, set, datetime, date, UUID, Decimal, enums, "
            "dataclasses, msgspec Structs and pydantic models"
        ) from None


def decode(data: bytes, target: Any = Any, *, where: str = "value") -> Any:
    """Decode bytes from :func:`encode`, to ``target`` when it is a type other than Any."""
    try:
        if target is Any or target is None:
            return _any_decoder.decode(data)
        decoder = _typed_decoders.get(target)
        if decoder is None:
            decoder = msgspec.msgpack.Decoder(target, dec_hook=_dec_hook, strict=False)
            _typed_decoders[target] = decoder
        return decoder.decode(data)
    except RecursionError:
        raise SerializationError(f"cannot decode {where}: it is nested too deeply") from None
    except (msgspec.DecodeError, msgspec.ValidationError, pydantic.ValidationError) as exc:
        raise SerializationError(f"cannot decode {where} as {_name(target)}: {exc}") from None
    except TypeError as exc:
        raise SerializationError(f"cannot decode {where}: {_name(target)} ({exc})") from None


def convert(value: Any, target: Any, *, where: str = "value") -> Any:
    """Convert an already decoded plain value to ``target`` (as :func:`decode` would)."""
    if target is Any:
        return value
    try:
        return msgspec.convert(value, target, strict=False, dec_hook=_dec_hook)
    except RecursionError:
        raise SerializationError(f"cannot decode {where}: it is nested too deeply") from None
    except (msgspec.ValidationError, pydantic.ValidationError) as exc:
        raise SerializationError(f"cannot decode {where} as {_name(target)}: {exc}") from None
    except TypeError as exc:
        raise SerializationError(f"cannot decode {where}: {_name(target)} ({exc})") from None


def _name(target: Any) -> str:
    return getattr(target, "__qualname__", None) or repr(target)
