"""Actor and Annotation: immutable values, keys checked, built from typed keys."""

from __future__ import annotations

import dataclasses

import pytest

from conventions import Actor, Annotation, Approval, Decision


def test_an_actor_is_a_frozen_value() -> None:
    actor = Actor("model", "ranker", "2024-05")
    assert (actor.kind, actor.id, actor.version) == ("model", "ranker", "2024-05")
    assert Actor("user", "u1").version is None
    assert actor == Actor("model", "ranker", version="2024-05")
    assert hash(actor) == hash(Actor("model", "ranker", "2024-05"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.id = "other"  # type: ignore[misc]


def test_annotation_defaults() -> None:
    annotation = Annotation({"decision.outcome": "low"})
    assert dict(annotation.attributes) == {"decision.outcome": "low"}
    assert annotation.actor is None
    assert annotation.payload is None
    assert annotation.idempotency_key is None
    assert annotation.emit_event is False


def test_annotation_attributes_are_a_read_only_copy() -> None:
    source = {"decision.outcome": "low"}
    annotation = Annotation(source)
    source["decision.outcome"] = "high"
    assert annotation.attributes["decision.outcome"] == "low"
    with pytest.raises(TypeError):
        annotation.attributes["decision.outcome"] = "high"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        annotation.emit_event = True  # type: ignore[misc]


def test_annotation_from_typed_pairs() -> None:
    actor = Actor("user", "u1")
    annotation = Annotation.of(
        Decision.outcome.pair("low"),
        Decision.confidence.pair(0.9),
        Approval.approvers.pair(["alice"]),
        actor=actor,
        payload={"rich": [1, 2]},
        idempotency_key="d-1",
        emit_event=True,
    )
    assert annotation == Annotation(
        {"decision.outcome": "low", "decision.confidence": 0.9, "approval.approvers": ["alice"]},
        actor,
        {"rich": [1, 2]},
        "d-1",
        True,
    )
    assert list(annotation.attributes) == [
        "decision.outcome",
        "decision.confidence",
        "approval.approvers",
    ]


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Annotation.of(Decision.outcome.pair("low"), Decision.outcome.pair("high"))


@pytest.mark.parametrize("key", ["Decision.outcome", "outcome", "decision."])
def test_free_form_keys_that_break_the_rule_are_accepted(key: str) -> None:
    assert Annotation({key: 1}).attributes == {key: 1}


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid annotation key"):
        Annotation({"": 1})


def test_annotation_may_carry_reserved_legacy_keys() -> None:
    # The deprecated metadata shim writes legacy.metadata.* through plain annotations.
    annotation = Annotation({"legacy.metadata.tier": "gold"})
    assert annotation.attributes == {"legacy.metadata.tier": "gold"}


def test_typed_keys_are_not_attribute_keys() -> None:
    with pytest.raises(ValueError, match="invalid annotation key"):
        Annotation({Decision.outcome: "low"})  # type: ignore[dict-item]
