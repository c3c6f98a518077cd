"""Annotations from steps, workflows, start() and attach; filters; the legacy shim."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections import Counter

import anyio
import pytest

from conventions import Actor, Annotation, Decision, Trigger
from persistence import Store
from runtime import (
    AnnotationTypeError,
    RunCancelledError,
    RunNotFoundError,
    Runtime,
    SerializationError,
    StepFailedError,
    annotate,
    step,
    step_metadata,
    workflow,
)
from runtime.testing import TestRuntime

pytestmark = pytest.mark.anyio
attempts: Counter[str] = Counter()


@step(max_retries=1, retry_delay=0.01)
async def classify(key: str) -> str:
    attempts[key] += 1
    annotate(Decision.outcome, "low", actor=Actor(kind="agent", id="triage", version="v3"))
    annotate(Decision.confidence, 0.42)
    annotate("acme.compliance.signoff", "alice@acme.com", idempotency_key="k1")
    annotate(
        attributes={"decision.rationale": "short", "decision.used_fallback": True, "x.none": None},
        payload={"raw": [1, 2]},
        emit_event=True,
    )
    if attempts[key] == 1:
        raise RuntimeError("first attempt fails after annotating")
    return "low"


@workflow
async def triage(key: str) -> str:
    annotate(Trigger.source, "webhook:zendesk")
    result = await classify(key)
    annotate("acme.triage.done", True)
    return result


@step
async def stuck(marker: str) -> None:
    annotate("acme.never", 1)
    await asyncio.sleep(30)


@workflow
async def cancelled_with_notes(marker: str) -> None:
    await stuck(marker)


def key() -> str:
    return uuid.uuid4().hex


async def test_annotations_from_steps_and_workflow_code(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[triage]) as rt:
        run = await rt.start(triage, k)
        assert await run.result(timeout=10) == "low"
        rows = await rt.annotations.list(run.id)
        log = await run.events()
    by_key = Counter(r.key for r in rows)
    # two attempts made the same annotations: the first attempt's (written with its
    # step_retrying, before it raised) are not written again by the second
    assert by_key["decision.outcome"] == 1 and by_key["decision.confidence"] == 1
    assert by_key["acme.compliance.signoff"] == 1
    assert by_key["trigger.source"] == 1 and by_key["acme.triage.done"] == 1
    assert "x.none" not in by_key
    outcome = next(r for r in rows if r.key == "decision.outcome")
    assert (outcome.scope, outcome.scope_id, outcome.attempt) == ("step", classify.name, 0)
    assert (outcome.actor_kind, outcome.actor_id, outcome.actor_version) == (
        "agent",
        "triage",
        "v3",
    )
    assert outcome.step_id is not None and outcome.step_id.startswith("step_")
    rationale = next(r for r in rows if r.key == "decision.rationale")
    assert rationale.payload == {"raw": [1, 2]} and rationale.value == "short"
    source = next(r for r in rows if r.key == "trigger.source")
    assert (source.scope, source.scope_id, source.step_id) == ("run", None, None)
    emitted = [e for e in log if e.event_type == "annotation_created"]
    assert sorted(e.data.key for e in emitted) == [  # type: ignore[union-attr]
        "decision.rationale",
        "decision.used_fallback",
    ]


async def test_workflow_annotations_are_written_once_across_replays(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[triage], passivate_after=0) as rt:
        run = await rt.start(triage, k)
        await run.result(timeout=10)
    async with Runtime(shared_store, workflows=[triage]) as rt:
        rows = await rt.annotations.list(run.id, key="trigger.source")
        assert len(rows) == 1


async def test_a_cancelled_step_writes_none_of_its_annotations(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[cancelled_with_notes]) as rt:
        run = await rt.start(cancelled_with_notes, "m")
        with anyio.fail_after(10):
            while rt.stats()["running_steps"] == 0:
                await anyio.sleep(0.01)
        await run.cancel()
        with pytest.raises(RunCancelledError):
            await run.result(timeout=10)
        assert await rt.annotations.list(run.id, key="acme.never") == []


async def test_start_annotations_attach_and_filters(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[triage]) as rt:
        run = await rt.start(
            triage,
            key(),
            annotations=[
                Annotation(
                    attributes={Trigger.source.key: "manual:cli", "trigger.reason": "retry"},
                    actor=Actor(kind="user", id="bob"),
                )
            ],
        )
        first = await rt.annotations.list(run.id, actor_id="bob")
        assert {r.key for r in first} == {"trigger.source", "trigger.reason"}
        created = (await run.events())[0].created_at
        assert all(r.created_at == created and r.scope == "run" for r in first)
        await run.result(timeout=10)
        written = await rt.annotations.attach(
            run.id, {"approval.approvers": ["carol"]}, actor=Actor("user", "carol"), scope="review"
        )
        assert [r.key for r in written] == ["approval.approvers"]
        assert [r.value for r in await rt.annotations.list(run.id, scope="review")] == [["carol"]]
        # 4 decision.* keys; the retry of classify does not write them again
        assert len(await rt.annotations.list(run.id, key_prefix="decision.")) == 4
        assert len(await rt.annotations.list(run.id, key_prefix="decision.", limit=3)) == 3
        only = await rt.annotations.list(run.id, key="trigger.reason", key_prefix="decision.")
        assert [r.key for r in only] == ["trigger.reason"]
        steps_only = await rt.annotations.list(run.id, scope_id=classify.name)
        assert steps_only and all(r.scope == "step" for r in steps_only)
        unscoped = await rt.annotations.list(run.id, scope_id=None)
        assert unscoped and all(r.scope_id is None for r in unscoped)
        everything = await rt.annotations.list(run.id)
        order = [(r.created_at, r.id) for r in everything]
        assert order == sorted(order)
        start, end = everything[0].created_at, everything[-1].created_at
        assert len(await rt.annotations.list(run.id, since=start, until=end)) == len(everything)
        assert await rt.annotations.list(run.id, since=end, until=end)


async def test_bad_annotations_are_refused_and_write_nothing(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[triage]) as rt:
        run = await rt.start(triage, key())
        await run.result(timeout=10)
        before = await rt.annotations.list(run.id)
        with pytest.raises(RunNotFoundError):
            await rt.annotations.attach("wrun_nope", {"a.b": 1})
        with pytest.raises(SerializationError, match=r"annotation 'a\.c'"):
            await rt.annotations.attach(run.id, {"a.b": 1, "a.c": object()})
        with pytest.raises(TypeError, match=r"decision\.confidence"):
            await rt.annotations.attach(run.id, {"decision.confidence": "high"})
        assert await rt.annotations.list(run.id) == before
        rows = await rt.annotations.attach(run.id, {"Not A Valid.Key": 1})  # free-form: accepted
        assert [r.key for r in rows] == ["Not A Valid.Key"]


async def test_legacy_metadata_shim_and_its_migration(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[triage]) as rt:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = await rt.start(triage, key(), metadata={"tier": "gold", "region": "eu"})
        assert any(issubclass(w.category, DeprecationWarning) for w in caught)
        await run.result(timeout=10)
        virtual = await rt.annotations.list(run.id, key_prefix="legacy.metadata.")
        assert {(r.key, r.value) for r in virtual} == {
            ("legacy.metadata.tier", "gold"),
            ("legacy.metadata.region", "eu"),
        }
        assert all(r.id.startswith("synthesized:") for r in virtual)
        assert await rt.annotations.list(run.id, key_prefix="legacy.metadata.", scope="step") == []
        assert await rt.annotations.list(run.id, key_prefix="legacy.metadata.", attempt=1) == []
        assert await rt.annotations.migrate_legacy_metadata() >= 1
        persisted = await rt.annotations.list(run.id, key_prefix="legacy.metadata.")
        assert {(r.key, r.value) for r in persisted} == {
            ("legacy.metadata.tier", "gold"),
            ("legacy.metadata.region", "eu"),
        }
        assert not any(r.id.startswith("synthesized:") for r in persisted)
        await rt.annotations.migrate_legacy_metadata()
        assert len(await rt.annotations.list(run.id, key_prefix="legacy.metadata.")) == 2


async def test_legacy_metadata_keys_written_by_hand_end_the_virtual_rows(
    shared_store: Store,
) -> None:
    # The reference engine's migration recipe: attach the metadata as legacy.metadata.* rows.
    async with Runtime(shared_store, workflows=[triage]) as rt:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            run = await rt.start(triage, key(), metadata={"tier": "gold", "region": "eu"})
        await run.result(timeout=10)
        assert len(await rt.annotations.list(run.id, key_prefix="legacy.metadata.")) == 2
        rows = await rt.annotations.attach(
            run.id, {"legacy.metadata.tier": "platinum"}, idempotency_key="legacy.metadata.tier"
        )
        assert [(r.key, r.value) for r in rows] == [("legacy.metadata.tier", "platinum")]
        listed = await rt.annotations.list(run.id, key_prefix="legacy.metadata.")
        assert [(r.key, r.value) for r in listed] == [("legacy.metadata.tier", "platinum")]
        assert not listed[0].id.startswith("synthesized:")

        # At start, in the same transaction as run_created: no virtual row is ever listed.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            second = await rt.start(
                triage,
                key(),
                metadata={"tier": "gold"},
                annotations=[Annotation({"legacy.metadata.tier": "silver"})],
            )
        listed = await rt.annotations.list(second.id, key_prefix="legacy.metadata.")
        assert [(r.key, r.value) for r in listed] == [("legacy.metadata.tier", "silver")]


def test_step_metadata_outside_a_step_is_refused() -> None:
    with pytest.raises(RuntimeError, match="only be called in a step"):
        step_metadata()
    with pytest.raises(RuntimeError, match="workflow or a step"):
        annotate("a.b", 1)


wrong_calls: Counter[str] = Counter()


@step
async def mistyped(key: str) -> None:
    wrong_calls[key] += 1
    annotate(Decision.outcome, "low")
    annotate("acme.review.queue", "b")
    annotate(attributes={"decision.rationale": "short"})
    annotate(Decision.confidence, "high")  # type: ignore[arg-type]  # a float key


@workflow
async def mistyped_flow(key: str) -> str:
    try:
        await mistyped(key)
    except StepFailedError as error:
        return f"{error.error_type} after {error.attempts} attempt(s)"
    return "done"


async def test_a_mistyped_annotation_fails_the_step_at_once() -> None:
    k = key()
    async with TestRuntime(workflows=[mistyped_flow]) as rt:
        run = await rt.start(mistyped_flow, k)
        await rt.run_until_idle()  # no retry is waiting for the clock
        assert await run.result(timeout=5) == "AnnotationTypeError after 1 attempt(s)"
        rows = await rt.annotations.list(run.id)
        failed = [e for e in await run.events() if e.event_type == "step_failed"]
    assert wrong_calls[k] == 1
    assert sorted(r.key for r in rows) == [  # the valid ones before it, once
        "acme.review.queue",
        "decision.outcome",
        "decision.rationale",
    ]
    assert "'decision.confidence' takes" in failed[0].data.error.message  # type: ignore[union-attr]
    with pytest.raises(TypeError):  # still a TypeError to code that catches one
        raise AnnotationTypeError("x")


flaky_calls: Counter[str] = Counter()


@step(max_retries=3)
async def flaky_annotator(key: str) -> int:
    flaky_calls[key] += 1
    attempt = step_metadata().attempt
    annotate(Decision.outcome, "low")
    annotate(Decision.outcome, "low")  # made twice in an attempt: two rows, as before
    annotate("acme.try", attempt)  # a different value each attempt: one row each
    annotate("acme.note", "n", idempotency_key="mine")
    if attempt < 3:
        raise ConnectionError("down")
    return attempt


@workflow
async def flaky_annotations(key: str) -> int:
    return await flaky_annotator(key)


async def test_a_retried_step_does_not_write_its_annotations_again() -> None:
    k = key()
    async with TestRuntime(workflows=[flaky_annotations]) as rt:
        run = await rt.start(flaky_annotations, k)
        await rt.advance("10s")
        assert await run.result(timeout=5) == 3
        rows = await rt.annotations.list(run.id)
    assert flaky_calls[k] == 3
    assert Counter(r.key for r in rows) == {"decision.outcome": 2, "acme.try": 3, "acme.note": 1}
    assert sorted(r.value for r in rows if r.key == "acme.try") == [1, 2, 3]
    auto = [r.idempotency_key for r in rows if r.key == "decision.outcome"]
    assert all(k and k.startswith("actorflow.step:step_") for k in auto) and auto[0] != auto[1]
