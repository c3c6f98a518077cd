"""The standard annotation keys in their namespaces: Trigger, Decision, Approval, Revision, Failure.

The key strings and value types are those of the reference engine, so annotations written by
either engine read the same. Define your own keys the same way, under your organisation's prefix
(see the package README)::

    class Compliance(Namespace, prefix="acme.compliance"):
        signoff: Final = typed_key("acme.compliance.signoff", value_type=bool)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final

from .keys import KEY_RULE, TypedKey, is_valid_key, typed_key

__all__ = [
    "Namespace",
    "Trigger",
    "Decision",
    "Approval",
    "Revision",
    "Failure",
    "STANDARD_NAMESPACES",
    "STANDARD_KEYS",
    "STANDARD_KEYS_BY_NAME",
]


class _NamespaceMeta(type):
    """Makes a namespace class read-only once defined."""

    def __setattr__(cls, name: str, value: object) -> None:
        raise AttributeError(f"namespace {cls.__name__} is read-only: cannot set {name!r}")

    def __delattr__(cls, name: str) -> None:
        raise AttributeError(f"namespace {cls.__name__} is read-only: cannot delete {name!r}")


class Namespace(metaclass=_NamespaceMeta):
    """Base of a group of :class:`TypedKey` class attributes sharing one key prefix.

    Subclass it with ``prefix="..."``; every key of the subclass must start with that prefix and
    a dot, and no two attributes may share a key. Annotate the attributes ``Final`` so that
    type checkers keep them from being rebound; at run time the class is read-only.
    """

    prefix: ClassVar[str]
    """The dotted prefix every key in the namespace starts with."""
    _keys: ClassVar[tuple[TypedKey[Any], ...]]

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not is_valid_key(prefix + ".x"):
            raise ValueError(f"namespace prefix {prefix!r} of {cls.__name__}: {KEY_RULE}")
        keys = tuple(v for v in vars(cls).values() if isinstance(v, TypedKey))
        seen: set[str] = set()
        for key in keys:
            if not key.key.startswith(prefix + "."):
                raise ValueError(
                    f"key {key.key!r} of namespace {cls.__name__} is not under {prefix!r}"
                )
            if key.key in seen:
                raise ValueError(f"key {key.key!r} appears twice in namespace {cls.__name__}")
            seen.add(key.key)
        type.__setattr__(cls, "prefix", prefix)
        type.__setattr__(cls, "_keys", keys)

    @classmethod
    def all_keys(cls) -> tuple[TypedKey[Any], ...]:
        """The namespace's keys, in definition order."""
        return cls._keys


class Trigger(Namespace, prefix="trigger"):
    """What started a run: its source, parent run, reason and the actor behind it."""

    source: Final = typed_key(
        "trigger.source",
        value_type=str,
        stability="stable",
        description="Where the run came from, e.g. 'api', 'schedule', 'webhook'.",
    )
    parent_run_id: Final = typed_key(
        "trigger.parent_run_id",
        value_type=str,
        stability="stable",
        description="The id of the run that started this one, if any.",
    )
    reason: Final = typed_key(
        "trigger.reason",
        value_type=str,
        stability="stable",
        description="Why the run was started, in words.",
    )
    actor_kind: Final = typed_key(
        "trigger.actor.kind",
        value_type=str,
        stability="stable",
        description="The kind of actor that triggered the run, e.g. 'user', 'service'.",
    )
    actor_id: Final = typed_key(
        "trigger.actor.id",
        value_type=str,
        stability="stable",
        description="The id of the actor that triggered the run.",
    )


class Decision(Namespace, prefix="decision"):
    """A decision a workflow or step made: outcome, rationale, confidence and alternatives."""

    outcome: Final = typed_key(
        "decision.outcome",
        value_type=object,
        stability="stable",
        description="The outcome decided; any scalar value.",
    )
    rationale: Final = typed_key(
        "decision.rationale",
        value_type=str,
        stability="stable",
        description="Why this outcome was chosen, in words.",
    )
    confidence: Final = typed_key(
        "decision.confidence",
        value_type=float,
        stability="stable",
        description="Confidence in the outcome, from 0 (none) to 1 (certain).",
    )
    alternatives: Final = typed_key(
        "decision.alternatives",
        value_type=list[Any],
        stability="stable",
        description="The outcomes considered and not chosen; always an array.",
    )
    used_fallback: Final = typed_key(
        "decision.used_fallback",
        value_type=bool,
        stability="experimental",
        description="Whether the outcome came from a fallback rather than the primary path.",
    )


class Approval(Namespace, prefix="approval"):
    """A human or policy approval: who approved, when, under which policy version."""

    approvers: Final = typed_key(
        "approval.approvers",
        value_type=list[str],
        stability="stable",
        description="The ids of those who approved; always an array, even of one.",
    )
    timestamp: Final = typed_key(
        "approval.timestamp",
        value_type=str,
        stability="stable",
        description="When the approval was given, as an ISO 8601 string.",
    )
    policy_version: Final = typed_key(
        "approval.policy.version",
        value_type=str,
        stability="experimental",
        description="The version of the approval policy applied.",
    )


class Revision(Namespace, prefix="revision"):
    """A run that revises an earlier one: which run, and why."""

    previous_run_id: Final = typed_key(
        "revision.previous_run_id",
        value_type=str,
        stability="stable",
        description="The id of the run this run revises.",
    )
    reason: Final = typed_key(
        "revision.reason",
        value_type=str,
        stability="stable",
        description="Why the earlier run was revised, in words.",
    )


class Failure(Namespace, prefix="failure"):
    """How a step or run failed, as the workflow classifies it."""

    kind: Final = typed_key(
        "failure.kind",
        value_type=str,
        stability="experimental",
        description="The class of failure, e.g. 'timeout', 'validation', 'upstream'.",
    )
    retryable: Final = typed_key(
        "failure.retryable",
        value_type=bool,
        stability="experimental",
        description="Whether retrying may succeed.",
    )


STANDARD_NAMESPACES: Final[tuple[type[Namespace], ...]] = (
    Trigger,
    Decision,
    Approval,
    Revision,
    Failure,
)
"""The namespaces this package defines, in documentation order."""

STANDARD_KEYS: Final[tuple[TypedKey[Any], ...]] = tuple(
    key for namespace in STANDARD_NAMESPACES for key in namespace.all_keys()
)
"""Every key this package defines, in documentation order."""

STANDARD_KEYS_BY_NAME: Final[Mapping[str, TypedKey[Any]]] = MappingProxyType(
    {key.key: key for key in STANDARD_KEYS}
)
"""The standard keys by key string, to check a value given under a plain string key at run time."""
