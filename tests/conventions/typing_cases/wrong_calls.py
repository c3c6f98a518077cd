"""Calls mypy must reject: every line marked ``# E`` is an error, and no other line is.

Checked by ``tests/conventions/test_typing.py``; never run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conventions import (
    Actor,
    Annotation,
    Approval,
    Decision,
    Failure,
    Revision,
    Trigger,
    TypedKey,
    typed_key,
)

from ._annotate_stub import annotate

signoff = typed_key("acme.compliance.signoff", value_type=bool)
retries = typed_key("acme.billing.retries", value_type=int)
tags = typed_key("acme.billing.tags", value_type=list[str])
maybe: float | str = 0.5
names: list[int] = [1, 2]


def wrong() -> None:
    """Each call below is wrong."""
    annotate(Decision.confidence, "high")  # E
    annotate(Decision.confidence, [0.5])  # E
    annotate(Decision.confidence, maybe)  # E
    annotate(Decision.rationale, 0.5)  # E
    annotate(Decision.alternatives, "a")  # E
    annotate(Decision.alternatives, ("a", "b"))  # E
    annotate(Decision.used_fallback, 1.5)  # E
    annotate(Decision.used_fallback, 1)  # E
    annotate(Decision.used_fallback, "yes")  # E
    annotate(Approval.approvers, "alice")  # E
    annotate(Approval.approvers, [1, 2])  # E
    annotate(Approval.approvers, names)  # E
    annotate(Approval.approvers, ("alice", "bob"))  # E
    annotate(Approval.approvers, {"alice"})  # E
    annotate(Approval.timestamp, datetime.now(UTC))  # E
    annotate(Approval.policy_version, 2)  # E
    annotate(Trigger.source, 3)  # E
    annotate(Trigger.parent_run_id, b"run-1")  # E
    annotate(Trigger.actor_kind, Actor("user", "u1"))  # E
    annotate(Revision.previous_run_id, 7)  # E
    annotate(Failure.retryable, "true")  # E
    annotate(Failure.kind, None, emit_event="yes")  # E
    annotate(signoff, "approved")  # E
    annotate(retries, "3")  # E
    annotate(retries, 3.0)  # E
    annotate(tags, ["a", 1])  # E
    annotate(Trigger.source)  # E
    annotate(Trigger.source, "api", actor="alice")  # E
    annotate(attributes={Decision.outcome: "low"})  # E
    annotate(Decision.outcome.key, "low", idempotency_key=1)  # E
    Decision.confidence.pair("high")  # E
    Approval.approvers.pair("alice")  # E
    Annotation.of(Decision.confidence.pair("high"))  # E
    Annotation({"decision.outcome": "low"}, emit_event="yes")  # E
    Actor("user")  # E


def wrong_definitions() -> None:
    """Wrong key definitions and attempts to change keys or namespaces."""
    typed_key("acme.x.y", value_type=float, stability="beta")  # E
    typed_key("acme.x.y", value_type=float, description=None)  # E
    typed_key("acme.x.y")  # E
    typed_key(3, value_type=float)  # E
    TypedKey[float]("acme.x.y", str)  # E
    number: TypedKey[float] = typed_key("acme.x.y", value_type=str)  # E
    text: TypedKey[str] = Decision.outcome  # E
    anything: TypedKey[object] = Decision.confidence  # E
    Decision.confidence.key = "x"  # E
    Decision.confidence.stability = "deprecated"  # E
    Decision.confidence = typed_key("decision.confidence", value_type=str)  # E
    Actor("user", "u1").id = "u2"  # E
    Annotation({"a.b": 1}).emit_event = True  # E
    keys: list[TypedKey[Any]] = [Decision.confidence, "decision.outcome"]  # E
    print(number, text, anything, keys)
