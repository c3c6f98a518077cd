"""The parts of an annotation: who recorded it (:class:`Actor`) and what (:class:`Annotation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["Actor", "Annotation"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who or what recorded an annotation: a user, a service, a model...

    ``kind`` says what sort of actor it is (``"user"``, ``"service"``, ``"model"``), ``id``
    identifies it within its kind, and ``version`` optionally pins the actor's version (a model
    or service release).
    """

    kind: str
    id: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotation: attribute key/values plus optional actor, payload and idempotency key.

    ``attributes`` maps keys to values (scalars or arrays of scalars); it is copied into a
    read-only mapping. Keys are non-empty strings; free-form keys are accepted even where they
    break the naming rule (typed keys from :func:`typed_key` never do), and
    ``legacy.metadata.*`` keys are allowed here for the deprecated metadata shim. Build one
    from typed keys with :meth:`of`.
    ``payload`` holds a rich value that is stored but not queried; ``idempotency_key`` makes a
    replayed annotation a no-op; ``emit_event`` also appends an ``annotation_created`` event to
    the run's event log, in the same transaction.
    """

    attributes: Mapping[str, Any]
    actor: Actor | None = None
    payload: Any = None
    idempotency_key: str | None = None
    emit_event: bool = False

    def __post_init__(self) -> None:
        attributes = dict(self.attributes)
        for key in attributes:
            if not isinstance(key, str) or not key:
                raise ValueError(
                    f"invalid annotation key {key!r}: keys are non-empty strings (use "
                    "TypedKey.key or TypedKey.pair() for typed keys)"
                )
        object.__setattr__(self, "attributes", MappingProxyType(attributes))

    @classmethod
    def of(
        cls,
        *pairs: tuple[str, Any],
        actor: Actor | None = None,
        payload: Any = None,
        idempotency_key: str | None = None,
        emit_event: bool = False,
    ) -> Annotation:
        """An annotation from ``(key, value)`` pairs, each best made by :meth:`TypedKey.pair`.

        ``Annotation.of(Decision.outcome.pair("low"), Decision.confidence.pair(0.9))`` checks
        each value against its key's type. A key given twice raises :class:`ValueError`.
        """
        attributes: dict[str, Any] = {}
        for key, value in pairs:
            if key in attributes:
                raise ValueError(f"annotation key {key!r} given twice")
            attributes[key] = value
        return cls(attributes, actor, payload, idempotency_key, emit_event)
