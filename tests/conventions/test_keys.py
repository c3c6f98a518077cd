"""Typed keys: key validation, the standard keys exactly, immutability, namespaces, the README."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

import conventions
from conventions import (
    KEY_PATTERN,
    STANDARD_KEYS,
    STANDARD_KEYS_BY_NAME,
    STANDARD_NAMESPACES,
    Approval,
    Decision,
    Failure,
    Namespace,
    Revision,
    Trigger,
    TypedKey,
    is_reserved_key,
    is_valid_key,
    typed_key,
    validate_key,
)

VALID = [
    "a.b",
    "decision.confidence",
    "trigger.actor.kind",
    "acme.compliance.signoff",
    "a1.b_2",
    "x.y_z9.w",
    "decision.used_fallback",
    "a_.b__",
]
INVALID = [
    "",
    "decision",
    "Decision.outcome",
    "decision.Outcome",
    "DECISION.OUTCOME",
    "1decision.x",
    "decision.1x",
    "decision.",
    ".decision",
    "decision..x",
    "decision.out-come",
    "decision. x",
    "decision.x ",
    "decision.x\n",
    "_a.b",
    "a._b",
    "décision.x",
    "decision/x.y",
]

# (namespace, attribute, key, value type, stability), as the reference engine defines them.
EXPECTED: list[tuple[type[Namespace], str, str, object, str]] = [
    (Trigger, "source", "trigger.source", str, "stable"),
    (Trigger, "parent_run_id", "trigger.parent_run_id", str, "stable"),
    (Trigger, "reason", "trigger.reason", str, "stable"),
    (Trigger, "actor_kind", "trigger.actor.kind", str, "stable"),
    (Trigger, "actor_id", "trigger.actor.id", str, "stable"),
    (Decision, "outcome", "decision.outcome", object, "stable"),
    (Decision, "rationale", "decision.rationale", str, "stable"),
    (Decision, "confidence", "decision.confidence", float, "stable"),
    (Decision, "alternatives", "decision.alternatives", list[Any], "stable"),
    (Decision, "used_fallback", "decision.used_fallback", bool, "experimental"),
    (Approval, "approvers", "approval.approvers", list[str], "stable"),
    (Approval, "timestamp", "approval.timestamp", str, "stable"),
    (Approval, "policy_version", "approval.policy.version", str, "experimental"),
    (Revision, "previous_run_id", "revision.previous_run_id", str, "stable"),
    (Revision, "reason", "revision.reason", str, "stable"),
    (Failure, "kind", "failure.kind", str, "experimental"),
    (Failure, "retryable", "failure.retryable", bool, "experimental"),
]


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", VALID)
def test_valid_keys_are_accepted(key: str) -> None:
    assert is_valid_key(key)
    assert validate_key(key) == key
    assert typed_key(key, value_type=str).key == key


@pytest.mark.parametrize("key", INVALID)
def test_invalid_keys_are_refused_with_the_key_and_rule_quoted(key: str) -> None:
    assert not is_valid_key(key)
    with pytest.raises(ValueError) as info:
        typed_key(key, value_type=str)
    message = str(info.value)
    assert repr(key) in message
    assert "lowercase" in message and KEY_PATTERN in message
    with pytest.raises(ValueError):
        TypedKey(key, str)


def test_a_key_must_be_a_string() -> None:
    with pytest.raises(ValueError):
        validate_key(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["legacy.metadata.x", "legacy.metadata.customer_tier"])
def test_legacy_metadata_keys_are_reserved(key: str) -> None:
    assert is_valid_key(key)
    assert is_reserved_key(key)
    with pytest.raises(ValueError, match="reserved") as info:
        typed_key(key, value_type=str)
    assert repr(key) in str(info.value)
    with pytest.raises(ValueError, match="reserved"):
        validate_key(key)
    assert validate_key(key, allow_reserved=True) == key


@pytest.mark.parametrize(
    "key", ["legacy.metadata_x.y", "legacy.meta.data", "acme.legacy.metadata.x"]
)
def test_only_the_exact_prefix_is_reserved(key: str) -> None:
    assert not is_reserved_key(key)
    assert typed_key(key, value_type=str).key == key


@given(st.from_regex(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", fullmatch=True))
def test_keys_matching_the_rule_can_be_defined(key: str) -> None:
    assert is_valid_key(key)
    if not is_reserved_key(key):
        assert typed_key(key, value_type=str).key == key


@given(st.text())
def test_is_valid_key_is_exactly_the_pattern(text: str) -> None:
    expected = re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", text) is not None
    assert is_valid_key(text) == expected


def test_stability_is_checked_at_run_time() -> None:
    with pytest.raises(ValueError, match="stability"):
        typed_key("acme.x.y", value_type=str, stability="beta")  # type: ignore[arg-type]


def test_typed_key_defaults() -> None:
    key = typed_key("acme.x.y", value_type=int)
    assert key == TypedKey("acme.x.y", int, "experimental", "")
    assert (key.stability, key.description, key.value_type) == ("experimental", "", int)


# --- the standard keys -----------------------------------------------------------------------


@pytest.mark.parametrize(("namespace", "attribute", "key", "value_type", "stability"), EXPECTED)
def test_standard_key(
    namespace: type[Namespace], attribute: str, key: str, value_type: object, stability: str
) -> None:
    typed = getattr(namespace, attribute)
    assert isinstance(typed, TypedKey)
    assert typed.key == key
    assert typed.value_type == value_type
    assert typed.stability == stability
    assert typed.description and "\n" not in typed.description
    assert key.startswith(namespace.prefix + ".")


def test_the_standard_keys_are_exactly_these() -> None:
    assert Decision.confidence.key == "decision.confidence"
    assert [k.key for k in STANDARD_KEYS] == [key for _, _, key, _, _ in EXPECTED]
    assert dict(STANDARD_KEYS_BY_NAME) == {key.key: key for key in STANDARD_KEYS}
    assert list(STANDARD_NAMESPACES) == [Trigger, Decision, Approval, Revision, Failure]
    for namespace in STANDARD_NAMESPACES:
        attributes = [a for n, a, _, _, _ in EXPECTED if n is namespace]
        assert namespace.all_keys() == tuple(getattr(namespace, a) for a in attributes)
        public = [n for n, v in vars(namespace).items() if isinstance(v, TypedKey)]
        assert public == attributes


def test_plural_keys_take_arrays() -> None:
    for key in STANDARD_KEYS:
        if key.key.endswith("s"):
            assert getattr(key.value_type, "__origin__", None) is list, key.key


# --- immutability ----------------------------------------------------------------------------


def test_a_typed_key_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Decision.confidence.key = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Decision.confidence.stability = "deprecated"  # type: ignore[misc]
    assert Decision.confidence.key == "decision.confidence"


def test_a_namespace_is_read_only() -> None:
    with pytest.raises(AttributeError, match="read-only"):
        Decision.confidence = typed_key("decision.confidence", value_type=float)  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del Decision.confidence
    assert Decision.confidence.key == "decision.confidence"


def test_a_typed_key_is_hashable_and_not_a_string() -> None:
    assert not issubclass(TypedKey, str)
    assert str(Decision.confidence) == "decision.confidence"
    as_object: object = Decision.confidence
    assert as_object != "decision.confidence"
    assert len(set(STANDARD_KEYS)) == len(STANDARD_KEYS)
    assert Decision.confidence == typed_key(
        "decision.confidence",
        value_type=float,
        stability="stable",
        description=Decision.confidence.description,
    )


# --- run-time value checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        (Decision.confidence, 0.5, True),
        (Decision.confidence, 1, True),
        (Decision.confidence, None, True),
        (Decision.confidence, "high", False),
        (Decision.confidence, True, False),
        (Decision.used_fallback, True, True),
        (Decision.used_fallback, 1, False),
        (Decision.outcome, {"any": ["thing"]}, True),
        (Decision.alternatives, ["a", 1, None], True),
        (Decision.alternatives, ("a",), False),
        (Approval.approvers, ["alice", "bob"], True),
        (Approval.approvers, [], True),
        (Approval.approvers, "alice", False),
        (Approval.approvers, ["alice", 2], False),
        (Trigger.source, "api", True),
        (Trigger.source, 3, False),
        (typed_key("acme.x.n", value_type=int), 3, True),
        (typed_key("acme.x.n", value_type=int), 3.0, False),
        (typed_key("acme.x.n", value_type=int), False, False),
    ],
)
def test_accepts(key: TypedKey[Any], value: object, accepted: bool) -> None:
    assert key.accepts(value) is accepted


# --- namespaces ------------------------------------------------------------------------------


def test_a_custom_namespace() -> None:
    class Compliance(Namespace, prefix="acme.compliance"):
        signoff: Final = typed_key("acme.compliance.signoff", value_type=bool)
        reviewers: Final = typed_key("acme.compliance.reviewers", value_type=list[str])

    assert Compliance.prefix == "acme.compliance"
    assert Compliance.all_keys() == (Compliance.signoff, Compliance.reviewers)


def test_a_namespace_key_must_be_under_its_prefix() -> None:
    with pytest.raises(ValueError, match="not under 'acme'"):

        class Wrong(Namespace, prefix="acme"):
            signoff: Final = typed_key("other.signoff", value_type=bool)


def test_a_namespace_key_may_not_appear_twice() -> None:
    with pytest.raises(ValueError, match="twice"):

        class Twice(Namespace, prefix="acme"):
            a: Final = typed_key("acme.a", value_type=bool)
            b: Final = typed_key("acme.a", value_type=bool)


@pytest.mark.parametrize("prefix", ["Acme", "acme.", "", "1acme"])
def test_a_namespace_prefix_follows_the_key_rule(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):

        class Bad(Namespace, prefix=prefix):
            pass


# --- exports and the README ------------------------------------------------------------------


def test_exports() -> None:
    for name in conventions.__all__:
        assert hasattr(conventions, name), name
    for name in ["TypedKey", "typed_key", "is_valid_key", "Stability", "Actor", "Annotation"]:
        assert name in conventions.__all__


def type_label(value_type: object) -> str:
    """How the README writes a value type."""
    if value_type is object:
        return "any"
    if value_type == list[Any]:
        return "list[any]"
    return value_type.__name__ if isinstance(value_type, type) else str(value_type)


def test_the_readme_lists_every_key_with_its_type_and_stability() -> None:
    readme = (Path(conventions.__file__).parent / "README.md").read_text()
    rows = {
        cells[0].strip("` "): (cells[1].strip("` "), cells[2].strip())
        for line in readme.splitlines()
        if line.startswith("| `")
        and (cells := [c.strip() for c in line.strip().strip("|").split("|")])
        and len(cells) >= 3
    }
    for key in STANDARD_KEYS:
        assert key.key in rows, f"{key.key} is missing from the README's key table"
        assert rows[key.key][:2] == (type_label(key.value_type), key.stability), key.key
