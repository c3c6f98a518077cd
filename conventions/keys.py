"""Typed annotation keys: the key string, its value type, stability and description.

A :class:`TypedKey` carries its value type as a type parameter, so a type checker can reject a
wrong value where the key is used: ``annotate(Decision.confidence, "high")`` is a mypy error
because ``Decision.confidence`` is a ``TypedKey[float]``.

How the typing works: ``T`` is *invariant*. For a call to
``def annotate(key: TypedKey[T], value: T | None)``, mypy derives ``T == float`` from the key
and ``T :> str`` from the value; no ``T`` satisfies both, so the call is rejected. A covariant
``T`` would let mypy widen ``T`` to ``object`` (the join of ``float`` and ``str``) and accept
every call; a contravariant one would also reject wrong calls but would make a
``TypedKey[object]`` pass for a ``TypedKey[float]``, which breaks any reader typed
``(key: TypedKey[T]) -> T``. Invariance is right for both writers and readers.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "KEY_PATTERN",
    "KEY_RULE",
    "RESERVED_PREFIX",
    "STABILITIES",
    "Stability",
    "TypedKey",
    "is_reserved_key",
    "is_valid_key",
    "typed_key",
    "validate_key",
]

T = TypeVar("T")

Stability = Literal["stable", "experimental", "deprecated"]
"""How far a key may change: stable keys never do, experimental ones may, deprecated ones go."""

STABILITIES: tuple[Stability, ...] = typing.get_args(Stability)

KEY_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
"""Every annotation key matches this: two or more dotted lowercase segments."""

KEY_RULE = (
    "keys are two or more dot-separated segments, each starting with a lowercase letter "
    "followed by lowercase letters, digits or '_'"
)
"""The key rule in words, quoted by the errors that reject a key."""

RESERVED_PREFIX = "legacy.metadata."
"""Keys under this prefix belong to the deprecated metadata shim; typed keys may not use it."""

_KEY_RE = re.compile(KEY_PATTERN)


def is_valid_key(key: str) -> bool:
    """Whether ``key`` follows the key syntax (reserved keys are syntactically valid)."""
    return _KEY_RE.fullmatch(key) is not None


def is_reserved_key(key: str) -> bool:
    """Whether ``key`` lies under the reserved ``legacy.metadata.`` prefix."""
    return key.startswith(RESERVED_PREFIX)


def validate_key(key: str, *, allow_reserved: bool = False) -> str:
    """Return ``key`` if it is a valid key, else raise :class:`ValueError` quoting key and rule.

    Reserved (``legacy.metadata.*``) keys are refused unless ``allow_reserved`` is true, which
    only the deprecated metadata shim should pass.
    """
    if not isinstance(key, str) or not is_valid_key(key):
        raise ValueError(f"invalid annotation key {key!r}: {KEY_RULE} (pattern {KEY_PATTERN})")
    if not allow_reserved and is_reserved_key(key):
        raise ValueError(
            f"annotation key {key!r} is reserved: keys under {RESERVED_PREFIX!r} belong to the "
            "deprecated metadata shim"
        )
    return key


@dataclass(frozen=True, slots=True)
class TypedKey(Generic[T]):
    """An annotation key whose values have type ``T``.

    Build one with :func:`typed_key` (or ``TypedKey("acme.x", int)``). The key is validated on
    construction and reserved keys are refused. Instances are immutable and hashable. A
    ``TypedKey`` is deliberately not a ``str``: if it were, a wrongly-typed call would fall
    through to the untyped ``annotate(key: str, value: Any)`` overload and type-check.

    ``T`` is invariant (see the module docstring); to hold keys of mixed types, use
    ``TypedKey[Any]``.
    """

    key: str
    """The dotted key string, e.g. ``"decision.confidence"``."""
    value_type: type[T]
    """The runtime form of ``T``: ``float``, ``list[str]``, ``object`` (any value)..."""
    stability: Stability = "experimental"
    """The key's stability; see the stability policy in the package README."""
    description: str = field(default="", repr=False)
    """One line saying what the key records."""

    def __post_init__(self) -> None:
        validate_key(self.key)
        if self.stability not in STABILITIES:
            raise ValueError(
                f"annotation key {self.key!r}: stability must be one of {STABILITIES}, "
                f"not {self.stability!r}"
            )

    def __str__(self) -> str:
        return self.key

    def pair(self, value: T | None) -> tuple[str, T | None]:
        """The ``(key, value)`` pair for ``value``, type-checked against ``T``.

        Useful to build an attributes mapping from typed keys, e.g. with
        :meth:`~conventions.annotation.Annotation.of`.
        """
        return (self.key, value)

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is ``None`` or has the key's value type, checked at run time.

        Understands ``object`` (anything), ``list[X]`` (a ``list`` whose items match ``X``) and
        plain classes; ``bool`` is not accepted where ``int`` or ``float`` is expected, and an
        ``int`` is where ``float`` is. Type forms it does not understand accept every value.
        Callers that are not type-checked get their guarantee from this.
        """
        return value is None or _matches(value, self.value_type)


def _matches(value: object, form: object) -> bool:
    if form is object or form is Any:
        return True
    if typing.get_origin(form) is list:
        if not isinstance(value, list):
            return False
        args = typing.get_args(form)
        item = args[0] if args else object
        return all(_matches(v, item) for v in value)
    if form is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if form is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(form, type):
        return isinstance(value, form)
    return True


def typed_key(
    key: str,
    value_type: type[T],
    *,
    stability: Stability = "experimental",
    description: str = "",
) -> TypedKey[T]:
    """Define a key whose values have type ``value_type``.

    ``value_type`` may be a class (``float``, ``str``, ``object`` for any value) or a
    parameterised list (``list[str]``); mypy infers ``TypedKey[list[str]]`` from the latter.
    Raises :class:`ValueError` if ``key`` breaks the key rule or is under ``legacy.metadata.``.

    >>> typed_key("acme.compliance.signoff", value_type=bool).key
    'acme.compliance.signoff'
    """
    return TypedKey(key, value_type, stability, description)
