"""Calls mypy must accept, and the types it must infer for the standard keys.

Checked by ``tests/conventions/test_typing.py``; never run.
"""

from __future__ import annotations

from typing import Any, Final, assert_type

from conventions import (
    Actor,
    Annotation,
    Approval,
    Decision,
    Failure,
    Namespace,
    Revision,
    Trigger,
    TypedKey,
    typed_key,
)

from ._annotate_stub import annotate

assert_type(Trigger.source, TypedKey[str])
assert_type(Trigger.parent_run_id, TypedKey[str])
assert_type(Trigger.reason, TypedKey[str])
assert_type(Trigger.actor_kind, TypedKey[str])
assert_type(Trigger.actor_id, TypedKey[str])
assert_type(Decision.outcome, TypedKey[object])
assert_type(Decision.rationale, TypedKey[str])
assert_type(Decision.confidence, TypedKey[float])
assert_type(Decision.alternatives, TypedKey[list[Any]])
assert_type(Decision.used_fallback, TypedKey[bool])
assert_type(Approval.approvers, TypedKey[list[str]])
assert_type(Approval.timestamp, TypedKey[str])
assert_type(Approval.policy_version, TypedKey[str])
assert_type(Revision.previous_run_id, TypedKey[str])
assert_type(Revision.reason, TypedKey[str])
assert_type(Failure.kind, TypedKey[str])
assert_type(Failure.retryable, TypedKey[bool])
assert_type(Decision.confidence.key, str)
assert_type(Decision.confidence.pair(0.5), tuple[str, float | None])


class Compliance(Namespace, prefix="acme.compliance"):
    """A custom namespace, as the README shows."""

    signoff: Final = typed_key("acme.compliance.signoff", value_type=bool)
    reviewers: Final = typed_key("acme.compliance.reviewers", value_type=list[str])


assert_type(Compliance.signoff, TypedKey[bool])
assert_type(Compliance.reviewers, TypedKey[list[str]])
counted = TypedKey[int]("acme.billing.retries", int, "stable", "How many retries it took.")
assert_type(counted, TypedKey[int])


def right(approvers: list[str], confidence: float, any_key: TypedKey[Any]) -> None:
    """Each call below is right."""
    annotate(Decision.outcome, "low")
    annotate(Decision.outcome, 3)
    annotate(Decision.outcome, ["a", 1])
    annotate(Decision.outcome, None)
    annotate(Decision.rationale, "cheapest in stock")
    annotate(Decision.confidence, 0.92)
    annotate(Decision.confidence, 1)
    annotate(Decision.confidence, confidence)
    annotate(Decision.confidence, None)
    annotate(Decision.alternatives, ["medium", 2, None])
    annotate(Decision.alternatives, [])
    annotate(Decision.used_fallback, False)
    annotate(Approval.approvers, ["alice"])
    annotate(Approval.approvers, approvers)
    annotate(Approval.approvers, [])
    annotate(Approval.timestamp, "2024-05-01T12:00:00Z")
    annotate(Approval.policy_version, "v3")
    annotate(Trigger.source, "api", actor=Actor("user", "u1"))
    annotate(Trigger.parent_run_id, "run-1", idempotency_key="trigger-1")
    annotate(Trigger.reason, "nightly", payload={"rich": ["blob"]}, emit_event=True)
    annotate(Trigger.actor_kind, "service")
    annotate(Trigger.actor_id, "billing")
    annotate(Revision.previous_run_id, "run-0")
    annotate(Revision.reason, "wrong input")
    annotate(Failure.kind, "timeout")
    annotate(Failure.retryable, True)
    annotate(Compliance.signoff, True)
    annotate(Compliance.reviewers, ["carol"])
    annotate(counted, 3)
    annotate(any_key, object())
    annotate("acme.free.form", {"anything": 1})
    annotate(Decision.outcome.key, "low")
    annotate(attributes={"decision.outcome": "low", Decision.confidence.key: 0.9})
    Annotation.of(
        Decision.outcome.pair("low"),
        Decision.confidence.pair(0.9),
        Approval.approvers.pair(["alice"]),
        actor=Actor("model", "ranker", "2024-05"),
        payload=b"raw",
        idempotency_key="decision-1",
        emit_event=True,
    )
    Annotation({"decision.outcome": "low"}, Actor("user", "u1"))
    mixed: list[TypedKey[Any]] = [Decision.confidence, Approval.approvers]
    print(mixed)
