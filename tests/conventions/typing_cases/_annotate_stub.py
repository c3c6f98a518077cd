"""A stand-in for ``runtime.annotate`` with exactly the runtime's overloads, for mypy to check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, overload

from conventions import Actor, TypedKey

T = TypeVar("T")


@overload
def annotate(
    key: TypedKey[T],
    value: T | None,
    /,
    *,
    actor: Actor | None = None,
    payload: Any = None,
    idempotency_key: str | None = None,
    emit_event: bool = False,
) -> None: ...
@overload
def annotate(
    key: str,
    value: Any,
    /,
    *,
    actor: Actor | None = None,
    payload: Any = None,
    idempotency_key: str | None = None,
    emit_event: bool = False,
) -> None: ...
@overload
def annotate(
    *,
    attributes: Mapping[str, Any],
    actor: Actor | None = None,
    payload: Any = None,
    idempotency_key: str | None = None,
    emit_event: bool = False,
) -> None: ...
def annotate(*args: Any, **kwargs: Any) -> None:
    """Record an annotation (stand-in: does nothing)."""
