"""The conformance suite: every rule of the Store protocol, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import msgspec
import pytest

from persistence import (
    AnnotationFilter,
    AttachAnnotations,
    EntityConflictError,
    Hook,
    HookNotFoundError,
    HookStatus,
    Lease,
    LeaseClaim,
    LeaseLostError,
    NewAnnotation,
    NewEvent,
    PayloadRecordedError,
    RunExpiredError,
    RunNotFoundError,
    RunNotSupportedError,
    RunStatus,
    StepNotFoundError,
    StepStatus,
    Store,
    StreamClosedError,
    TooEarlyError,
    WaitNotFoundError,
    WaitStatus,
    WorkerInfo,
    open_store,
)
from persistence import events as ev
from tests.conftest import BOTH_SQLITE_WRITERS

from .helpers import (
    cancelled,
    completed,
    created,
    failed,
    hook_created,
    hook_disposed,
    hook_received,
    run_id,
    started,
    step_completed,
    step_created,
    step_failed,
    step_retrying,
    step_started,
    wait_completed,
    wait_created,
)

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("store_kind", BOTH_SQLITE_WRITERS)]


async def new_run(store: Store, name: str = "wf") -> str:
    run = run_id()
    result = await store.create_batch([created(run, name), started(run)])
    assert all(result.accepted(i) for i in range(2)), result.outcomes
    return run


async def refused(store: Store, request: NewEvent, error: type[BaseException]) -> BaseException:
    result = await store.create_batch([request])
    outcome = result.outcomes[0]
    assert isinstance(outcome, error), outcome
    with pytest.raises(error):
        await store.create(request)
    return outcome


async def types_of(store: Store, run: str) -> list[str]:
    return [e.event_type for e in (await store.list_events(run)).items]


# -- runs -------------------------------------------------------------------------------------


async def test_start_writes_created_and_started_in_one_batch(store: Store) -> None:
    run = run_id()
    result = await store.create_batch([created(run, "orders"), started(run)])
    first, second = result.outcomes
    assert isinstance(first, ev.Event) and isinstance(second, ev.Event)
    assert first.event_id < second.event_id
    assert first.event_id.startswith("evnt_")
    info = await store.get_run(run)
    assert info.status is RunStatus.RUNNING
    assert info.workflow_name == "orders"
    assert info.started_at is not None and info.started_at.tzinfo is not None
    assert info.last_event_id == second.event_id
    assert await types_of(store, run) == ["run_created", "run_started"]


async def test_duplicate_run_created_is_refused_and_changes_nothing(store: Store) -> None:
    run = await new_run(store)
    before = await store.get_run(run)
    await refused(store, created(run, "other"), EntityConflictError)
    after = await store.get_run(run)
    assert after == before
    assert await types_of(store, run) == ["run_created", "run_started"]


async def test_run_started_twice_conflicts_and_after_end_expires(store: Store) -> None:
    run = await new_run(store)
    await refused(store, started(run), EntityConflictError)
    await store.create(completed(run))
    await refused(store, started(run), RunExpiredError)


async def test_event_for_unknown_run_is_refused(store: Store) -> None:
    await refused(store, started("wrun_missing"), RunNotFoundError)
    with pytest.raises(RunNotFoundError):
        await store.get_run("wrun_missing")


async def test_second_terminal_event_is_refused(store: Store) -> None:
    run = await new_run(store)
    await store.create(completed(run, b"\x05"))
    await refused(store, failed(run), EntityConflictError)
    await refused(store, completed(run), EntityConflictError)
    await refused(store, cancelled(run), EntityConflictError)
    info = await store.get_run(run)
    assert info.status is RunStatus.COMPLETED and info.output == b"\x05"
    assert info.completed_at is not None


async def test_cancel_is_idempotent_and_recorded_each_time(store: Store) -> None:
    run = await new_run(store)
    await store.create(cancelled(run))
    await store.create(cancelled(run))
    assert (await store.get_run(run)).status is RunStatus.CANCELLED
    assert (await types_of(store, run))[-2:] == ["run_cancelled", "run_cancelled"]
    await refused(store, completed(run), EntityConflictError)


async def test_pending_run_can_be_cancelled(store: Store) -> None:
    run = run_id()
    await store.create(created(run))
    assert (await store.get_run(run)).status is RunStatus.PENDING
    await store.create(cancelled(run))
    assert (await store.get_run(run)).status is RunStatus.CANCELLED


async def test_newer_spec_version_is_not_supported(store: Store) -> None:
    run = await new_run(store)
    newer = NewEvent(run, ev.RunCompleted(output=b""), spec_version=ev.SPEC_VERSION + 1)
    error = await refused(store, newer, RunNotSupportedError)
    assert "upgrade" in str(error)
    fresh = run_id()
    await refused(
        store,
        NewEvent(fresh, ev.RunCreated(workflow_name="w", input=b""), spec_version=99),
        RunNotSupportedError,
    )
    with pytest.raises(RunNotFoundError):
        await store.get_run(fresh)


async def test_rerun_takes_a_terminal_run_back_to_running_once(store: Store) -> None:
    run = await new_run(store)
    await store.create(failed(run))
    rerun = NewEvent(run, ev.RunRerun(generation=1, from_position=0))
    await store.create(rerun)
    info = await store.get_run(run)
    assert info.status is RunStatus.RUNNING and info.generation == 1 and info.error is None
    await refused(store, rerun, EntityConflictError)
    await store.create(completed(run))
    assert (await store.get_run(run)).status is RunStatus.COMPLETED


async def test_list_runs_filters_and_pages(store: Store) -> None:
    a = await new_run(store, "alpha")
    b = await new_run(store, "beta")
    c = await new_run(store, "alpha")
    await store.create(completed(b))
    everything = await store.list_runs()
    assert [r.run_id for r in everything.items] == [c, b, a]
    assert [r.run_id for r in (await store.list_runs(workflow_name="alpha")).items] == [c, a]
    done = await store.list_runs(status=RunStatus.COMPLETED)
    assert [r.run_id for r in done.items] == [b]
    live = await store.list_runs(status=[RunStatus.RUNNING, RunStatus.PENDING])
    assert [r.run_id for r in live.items] == [c, a]
    first = await store.list_runs(limit=2)
    assert [r.run_id for r in first.items] == [c, b] and first.cursor is not None
    rest = await store.list_runs(limit=2, cursor=first.cursor)
    assert [r.run_id for r in rest.items] == [a] and rest.cursor is None


async def test_a_runs_input_and_metadata_are_read_back_after_every_write(store: Store) -> None:
    """A run's row is written with every batch of its events; its input and metadata, given
    once at its creation, come back whole from ``get_run`` and ``list_runs`` however often."""
    small, metadata = msgspec.msgpack.encode([1, "two"]), msgspec.msgpack.encode({"k": "v"})
    big = msgspec.msgpack.encode(b"x" * 200_000)
    for wanted, meta in ((small, metadata), (big, None)):
        run = run_id()
        made = NewEvent(run, ev.RunCreated(workflow_name="wf", input=wanted, metadata=meta))
        await store.create_batch([made, started(run)])
        for index in range(3):
            step = f"s{index}"
            await store.create_batch([step_created(run, step, index), step_started(run, step)])
            await store.create(step_completed(run, step))
        await store.create(completed(run))
        got = await store.get_run(run)
        assert (got.input, got.metadata, got.status) == (wanted, meta, RunStatus.COMPLETED)
        [listed] = [r for r in (await store.list_runs()).items if r.run_id == run]
        assert listed == got


async def test_a_steps_input_is_read_back_after_every_move(store: Store) -> None:
    """A step's row is written again as it starts, retries and ends; its input, given once,
    comes back whole from ``get_step`` and ``list_steps``."""
    run = await new_run(store)
    inputs = {"s1": msgspec.msgpack.encode(b"y" * 200_000), "s2": b"\x90", "s3": b""}
    for index, (step, data) in enumerate(inputs.items()):
        made = NewEvent(run, ev.StepCreated(step_name="s", input=data, position=index), step)
        await store.create_batch([made, step_started(run, step)])
    await store.create(step_retrying(run, "s1"))
    await store.create(step_started(run, "s1"))
    await store.create(step_completed(run, "s1"))
    await store.create(step_completed(run, "s2"))
    for step, data in inputs.items():
        assert (await store.get_step(run, step)).input == data
    listed = await store.list_steps(run)
    assert [(s.step_id, s.input) for s in listed] == list(inputs.items())
    assert [s.status for s in listed] == [
        StepStatus.COMPLETED,
        StepStatus.COMPLETED,
        StepStatus.RUNNING,
    ]


# -- events -----------------------------------------------------------------------------------


async def test_list_events_pages_in_log_order(store: Store) -> None:
    run = await new_run(store)
    for i in range(5):
        await store.create(step_created(run, f"step_{i}", i))
    page = await store.list_events(run, limit=3)
    assert len(page.items) == 3 and page.cursor == page.items[-1].event_id
    rest = await store.list_events(run, after=page.cursor)
    ids = [e.event_id for e in page.items + rest.items]
    assert ids == sorted(ids) and len(ids) == 7 and rest.cursor is None
    step_event = rest.items[-1]
    assert step_event.correlation_id == "step_4"
    assert isinstance(step_event.data, ev.StepCreated) and step_event.data.position == 4


async def test_batch_mixes_runs_and_one_refusal_does_not_fail_the_others(store: Store) -> None:
    a, b = await new_run(store), await new_run(store)
    await store.create(completed(b))
    result = await store.create_batch(
        [step_created(a, "s1"), step_created(b, "s1"), step_created(a, "s2", 1)]
    )
    assert result.accepted(0) and result.accepted(2)
    assert isinstance(result.outcomes[1], EntityConflictError)
    assert [s.step_id for s in await store.list_steps(a)] == ["s1", "s2"]
    assert await store.list_steps(b) == []


async def test_refused_event_in_batch_leaves_state_of_its_run_alone(store: Store) -> None:
    run = await new_run(store)
    await store.create(step_created(run, "s1"))
    result = await store.create_batch(
        [step_completed(run, "s1"), step_started(run, "s1"), step_completed(run, "s1")]
    )
    assert isinstance(result.outcomes[0], EntityConflictError)
    assert result.accepted(1) and result.accepted(2)
    step = await store.get_step(run, "s1")
    assert step.status is StepStatus.COMPLETED and step.attempt == 1


# -- steps ------------------------------------------------------------------------------------


async def test_step_lifecycle(store: Store) -> None:
    run = await new_run(store)
    await store.create_batch([step_created(run, "s1", 0, "charge"), step_started(run, "s1")])
    step = await store.get_step(run, "s1")
    assert step.status is StepStatus.RUNNING and step.attempt == 1 and step.step_name == "charge"
    assert step.started_at is not None
    await store.create(step_completed(run, "s1", b"\x07"))
    step = await store.get_step(run, "s1")
    assert step.status is StepStatus.COMPLETED and step.output == b"\x07"
    await refused(store, step_completed(run, "s1"), EntityConflictError)
    await refused(store, step_failed(run, "s1"), EntityConflictError)
    await refused(store, step_started(run, "s1"), EntityConflictError)
    await refused(store, step_created(run, "s1"), EntityConflictError)


async def test_unknown_step_is_not_found(store: Store) -> None:
    run = await new_run(store)
    await refused(store, step_started(run, "nope"), StepNotFoundError)
    with pytest.raises(StepNotFoundError):
        await store.get_step(run, "nope")


async def test_step_must_run_before_it_finishes(store: Store) -> None:
    run = await new_run(store)
    await store.create(step_created(run, "s1"))
    await refused(store, step_completed(run, "s1"), EntityConflictError)
    await refused(store, step_retrying(run, "s1"), EntityConflictError)


async def test_retry_waits_for_retry_after_and_counts_attempts(store: Store) -> None:
    run = await new_run(store)
    later = datetime.now(UTC) + timedelta(hours=1)
    await store.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    await store.create(step_retrying(run, "s1", later))
    step = await store.get_step(run, "s1")
    assert step.status is StepStatus.PENDING and step.retry_after == later
    assert step.error is not None and step.error.message == "again"
    error = await refused(store, step_started(run, "s1"), TooEarlyError)
    assert isinstance(error, TooEarlyError) and error.retry_after == later
    await store.create_batch([step_created(run, "s2", 1), step_started(run, "s2")])
    past = datetime.now(UTC) - timedelta(seconds=1)
    await store.create(step_retrying(run, "s2", past))
    await store.create(step_started(run, "s2"))
    step = await store.get_step(run, "s2")
    assert step.attempt == 2 and step.status is StepStatus.RUNNING and step.retry_after is None


async def test_restart_of_running_step_is_a_new_attempt(store: Store) -> None:
    run = await new_run(store)
    await store.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    await store.create(step_started(run, "s1"))
    assert (await store.get_step(run, "s1")).attempt == 2
    await store.create(step_retrying(run, "s1"))
    await store.create(step_started(run, "s1"))
    await store.create(step_failed(run, "s1"))
    step = await store.get_step(run, "s1")
    assert step.status is StepStatus.FAILED and step.attempt == 3
    assert step.error is not None and step.error.type == "ValueError"


async def test_no_new_entities_and_no_step_moves_on_ended_run(store: Store) -> None:
    run = await new_run(store)
    await store.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    await store.create(cancelled(run))
    await refused(store, step_completed(run, "s1"), RunExpiredError)
    await refused(store, step_created(run, "s2", 1), EntityConflictError)
    await refused(store, wait_created(run, "w1", datetime.now(UTC), 2), EntityConflictError)
    await refused(store, hook_created(run, "h1", "tok", 3), EntityConflictError)
    assert (await store.get_step(run, "s1")).status is StepStatus.RUNNING


async def test_completion_and_next_start_commit_together(store: Store) -> None:
    run = await new_run(store)
    await store.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    result = await store.create_batch(
        [step_completed(run, "s1"), step_created(run, "s2", 1), step_started(run, "s2")]
    )
    assert all(result.accepted(i) for i in range(3))
    steps = await store.list_steps(run)
    assert [(s.step_id, s.status) for s in steps] == [
        ("s1", StepStatus.COMPLETED),
        ("s2", StepStatus.RUNNING),
    ]


async def test_racing_completions_of_one_step_exactly_one_wins(store_url: str) -> None:
    first = await open_store(store_url)
    second = first if store_url.startswith("memory") else await open_store(store_url)
    try:
        run = await new_run(first)
        await first.create_batch([step_created(run, "s1"), step_started(run, "s1")])
        outcomes: list[Any] = []

        async def complete(store: Store, value: bytes) -> None:
            result = await store.create_batch([step_completed(run, "s1", value)])
            outcomes.append(result.outcomes[0])

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(complete, first if i % 2 else second, bytes([i]))
        winners = [o for o in outcomes if isinstance(o, ev.Event)]
        losers = [o for o in outcomes if isinstance(o, EntityConflictError)]
        assert len(winners) == 1 and len(losers) == 7
        step = await first.get_step(run, "s1")
        assert isinstance(winners[0].data, ev.StepCompleted)
        assert step.output == winners[0].data.result
        completions = [
            e for e in (await first.list_events(run)).items if e.event_type == "step_completed"
        ]
        assert len(completions) == 1
    finally:
        if second is not first:
            await second.close()
        await first.close()


# -- waits ------------------------------------------------------------------------------------


async def test_wait_lifecycle_and_due_waits(store: Store) -> None:
    run = await new_run(store)
    now = datetime.now(UTC)
    await store.create_batch(
        [
            wait_created(run, "w1", now - timedelta(seconds=5), 0),
            wait_created(run, "w2", now + timedelta(hours=1), 1),
        ]
    )
    due = await store.due_waits(now)
    assert [(w.run_id, w.wait_id) for w in due] == [(run, "w1")]
    await store.create(wait_completed(run, "w1"))
    assert await store.due_waits(now) == []
    await refused(store, wait_completed(run, "w1"), EntityConflictError)
    await refused(store, wait_completed(run, "nope"), WaitNotFoundError)
    waits = await store.list_waits(run)
    assert [(w.wait_id, w.status) for w in waits] == [
        ("w1", WaitStatus.COMPLETED),
        ("w2", WaitStatus.WAITING),
    ]
    await refused(store, wait_created(run, "w2", now, 1), EntityConflictError)


async def test_ending_run_cancels_its_waits(store: Store) -> None:
    run = await new_run(store)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await store.create(wait_created(run, "w1", past))
    await store.create(completed(run))
    assert await store.due_waits(datetime.now(UTC)) == []
    assert (await store.list_waits(run))[0].status is WaitStatus.CANCELLED
    await refused(store, wait_completed(run, "w1"), RunExpiredError)


async def test_waits_due_at_the_same_moment_complete_in_one_batch(store: Store) -> None:
    at = datetime.now(UTC) - timedelta(seconds=1)
    runs = [await new_run(store) for _ in range(3)]
    for run in runs:
        await store.create(wait_created(run, "w", at))
    due = await store.due_waits(datetime.now(UTC))
    assert sorted(w.run_id for w in due) == sorted(runs)
    result = await store.create_batch([wait_completed(w.run_id, w.wait_id) for w in due])
    assert all(result.accepted(i) for i in range(3))
    assert await store.due_waits(datetime.now(UTC)) == []


# -- hooks ------------------------------------------------------------------------------------


async def test_hook_lifecycle(store: Store) -> None:
    run = await new_run(store)
    await store.create(hook_created(run, "h1", "approve:1"))
    hook = await store.get_hook("approve:1")
    assert (hook.run_id, hook.hook_id, hook.status) == (run, "h1", HookStatus.ACTIVE)
    await store.create(hook_received(run, "h1", b"\x01"))
    await store.create(hook_received(run, "h1", b"\x02"))
    await store.create(hook_disposed(run, "h1"))
    with pytest.raises(HookNotFoundError):
        await store.get_hook("approve:1")
    await refused(store, hook_received(run, "h1"), HookNotFoundError)
    await refused(store, hook_disposed(run, "h1"), EntityConflictError)
    await refused(store, hook_received(run, "h9"), HookNotFoundError)


async def test_second_live_claim_is_recorded_as_conflict(store: Store) -> None:
    first, second = await new_run(store), await new_run(store)
    await store.create(hook_created(first, "h1", "tok"))
    event = await store.create(hook_created(second, "h1", "tok"))
    assert event.event_type == "hook_conflict"
    assert isinstance(event.data, ev.HookConflict) and event.data.conflicting_run_id == first
    assert (await store.get_hook("tok")).run_id == first
    hooks = await store.list_hooks(second)
    assert [(h.hook_id, h.status) for h in hooks] == [("h1", HookStatus.CONFLICTED)]
    await refused(store, hook_received(second, "h1"), HookNotFoundError)
    # the token is freed when the first run ends, and can be claimed again
    await store.create(completed(first))
    with pytest.raises(HookNotFoundError):
        await store.get_hook("tok")
    await store.create(hook_created(second, "h2", "tok", 1))
    assert (await store.get_hook("tok")).run_id == second


async def test_same_run_second_hook_on_a_held_token_conflicts(store: Store) -> None:
    run = await new_run(store)
    await store.create(hook_created(run, "h1", "tok"))
    event = await store.create(hook_created(run, "h2", "tok", 1))
    assert event.event_type == "hook_conflict"


async def test_dispose_frees_the_token_while_the_run_goes_on(store: Store) -> None:
    first, second = await new_run(store), await new_run(store)
    await store.create(hook_created(first, "h1", "tok"))
    await store.create(hook_disposed(first, "h1"))
    event = await store.create(hook_created(second, "h1", "tok"))
    assert event.event_type == "hook_created"
    assert (await store.get_run(first)).status is RunStatus.RUNNING


async def test_claims_in_one_batch_are_decided_in_order(store: Store) -> None:
    first, second = await new_run(store), await new_run(store)
    result = await store.create_batch(
        [
            hook_created(first, "h1", "tok"),
            hook_created(second, "h1", "tok"),
            hook_disposed(first, "h1"),
            hook_created(second, "h2", "tok", 1),
        ]
    )
    kinds = [o.event_type for o in result.outcomes if isinstance(o, ev.Event)]
    assert kinds == ["hook_created", "hook_conflict", "hook_disposed", "hook_created"]
    assert (await store.get_hook("tok")).hook_id == "h2"


async def test_clients_cannot_write_hook_conflict(store: Store) -> None:
    run = await new_run(store)
    forged = NewEvent(run, ev.HookConflict(token="t", conflicting_run_id="x", position=0), "h1")
    await refused(store, forged, EntityConflictError)


# -- streams ----------------------------------------------------------------------------------


async def test_stream_append_read_tail_and_close(store: Store) -> None:
    run = await new_run(store)
    assert (await store.stream_info(run, "")).tail_index == -1
    info = await store.append_chunks(run, "", 0, [b"a", b"b"], close=False)
    assert info.tail_index == 1 and not info.closed
    await store.append_chunks(run, "", 2, [b"c"], close=True)
    chunks = await store.read_chunks(run, "", 1)
    assert [(c.index, c.data, c.eof) for c in chunks] == [
        (1, b"b", False),
        (2, b"c", False),
        (3, b"", True),
    ]
    info = await store.stream_info(run, "")
    assert info.tail_index == 2 and info.closed
    with pytest.raises(StreamClosedError):
        await store.append_chunks(run, "", 3, [b"d"], close=False)
    assert await store.read_chunks(run, "other") == []


async def test_stream_refuses_gaps_and_unknown_runs(store: Store) -> None:
    run = await new_run(store)
    await store.append_chunks(run, "ns", 0, [b"a"], close=False)
    with pytest.raises(EntityConflictError):
        await store.append_chunks(run, "ns", 5, [b"x"], close=False)
    with pytest.raises(EntityConflictError):
        await store.append_chunks(run, "ns", 0, [b"x"], close=False)
    with pytest.raises(RunNotFoundError):
        await store.append_chunks("wrun_missing", "ns", 0, [b"x"], close=False)
    assert [c.data for c in await store.read_chunks(run, "ns")] == [b"a"]


async def test_stream_read_limit(store: Store) -> None:
    run = await new_run(store)
    await store.append_chunks(run, "", 0, [bytes([i]) for i in range(10)], close=True)
    chunks = await store.read_chunks(run, "", 2, limit=3)
    assert [c.index for c in chunks] == [2, 3, 4]


# -- annotations ------------------------------------------------------------------------------


def note(key: str, value: bytes = b"\x01", **kwargs: Any) -> NewAnnotation:
    return NewAnnotation(key=key, value=value, **kwargs)


async def test_annotations_are_written_with_their_event_only_if_it_is_accepted(
    store: Store,
) -> None:
    run = await new_run(store)
    await store.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    with_notes = NewEvent(
        run,
        ev.StepCompleted(result=b""),
        "s1",
        annotations=(note("decision.outcome", scope="step", scope_id="s", step_id="s1"),),
    )
    await store.create(cancelled(run))
    result = await store.create_batch([with_notes])
    assert isinstance(result.outcomes[0], RunExpiredError) and result.annotations == [[]]
    assert await store.list_annotations(run) == []


async def test_attach_to_unknown_run_is_refused(store: Store) -> None:
    result = await store.create_batch([AttachAnnotations("wrun_missing", (note("a.b"),))])
    assert isinstance(result.outcomes[0], RunNotFoundError)


async def test_annotation_idempotency(store: Store) -> None:
    run = await new_run(store)
    rows = (note("acme.sign.off", idempotency_key="k1"), note("acme.sign.off"))
    first = await store.create_batch([AttachAnnotations(run, rows)])
    again = await store.create_batch([AttachAnnotations(run, rows)])
    assert len(first.annotations[0]) == 2 and len(again.annotations[0]) == 1
    listed = await store.list_annotations(run)
    assert len(listed) == 3
    assert sum(1 for r in listed if r.idempotency_key == "k1") == 1
    other_key = await store.create_batch(
        [AttachAnnotations(run, (note("acme.other", idempotency_key="k1"),))]
    )
    assert len(other_key.annotations[0]) == 1


@pytest.mark.parametrize(
    "odd",
    ["plain", "", "\x1e", "a\x1fb", "\x1e\x1e", "tab\tnew\nline \u00e9 \U0001f600"],
)
async def test_annotation_strings_of_a_batch_come_back_exactly(store: Store, odd: str) -> None:
    """Strings of several rows written together (PostgreSQL packs a batch's text columns
    into one parameter, separated by control characters) come back as written: empty,
    NULL, separators and non-ASCII included."""
    run = await new_run(store)
    rows = (
        note("acme.one", actor_id=odd, scope_id=None, idempotency_key=odd + "1"),
        note("acme.two", actor_id=None, scope_id=odd, idempotency_key=None),
        note("acme.three", actor_id=odd, scope_id=odd, actor_kind=odd, attempt=7),
    )
    result = await store.create_batch([AttachAnnotations(run, rows)])
    assert len(result.annotations[0]) == 3
    listed = sorted(await store.list_annotations(run), key=lambda r: r.key)
    got = [(r.key, r.actor_id, r.scope_id, r.idempotency_key, r.actor_kind) for r in listed]
    assert got == [
        ("acme.one", odd, None, odd + "1", None),
        ("acme.three", odd, odd, None, odd),
        ("acme.two", None, odd, None, None),
    ]
    assert [r.attempt for r in listed] == [0, 7, 0]


async def test_emit_event_once_per_inserted_row(store: Store) -> None:
    run = await new_run(store)
    rows = (note("a.b", emit_event=True, idempotency_key="k"), note("a.c", emit_event=True))
    await store.create_batch([AttachAnnotations(run, rows)])
    await store.create_batch([AttachAnnotations(run, rows[:1])])
    events = [
        e for e in (await store.list_events(run)).items if e.event_type == "annotation_created"
    ]
    assert [e.data.key for e in events if isinstance(e.data, ev.AnnotationCreated)] == [
        "a.b",
        "a.c",
    ]


async def test_annotation_filters_and_order(store: Store) -> None:
    run = await new_run(store)
    await store.create_batch(
        [
            AttachAnnotations(
                run,
                (
                    note("decision.outcome", actor_kind="agent", actor_id="triage"),
                    note("decision.confidence", scope="step", scope_id="classify", attempt=1),
                    note("trigger.source", actor_kind="user", actor_id="alice"),
                ),
            )
        ]
    )
    everything = await store.list_annotations(run)
    assert [r.key for r in everything] == sorted(
        [r.key for r in everything], key=lambda k: [x.key for x in everything].index(k)
    )
    assert len(everything) == 3
    stamps = [(r.created_at, r.id) for r in everything]
    assert stamps == sorted(stamps)

    async def keys(**filters: Any) -> set[str]:
        rows = await store.list_annotations(run, AnnotationFilter(**filters))
        return {r.key for r in rows}

    assert await keys(key_prefix="decision.") == {"decision.outcome", "decision.confidence"}
    assert await keys(key="trigger.source", key_prefix="decision.") == {"trigger.source"}
    assert await keys(scope="step") == {"decision.confidence"}
    assert await keys(scope_id="classify", match_scope_id=True) == {"decision.confidence"}
    assert await keys(scope_id=None, match_scope_id=True) == {"decision.outcome", "trigger.source"}
    assert await keys(actor_id="alice") == {"trigger.source"}
    assert await keys(actor_kind="agent") == {"decision.outcome"}
    assert await keys(attempt=1) == {"decision.confidence"}
    at = everything[0].created_at
    assert len(await keys(since=at, until=at)) >= 1
    assert await keys(since=at + timedelta(days=1)) == set()
    assert await keys(until=at - timedelta(days=1)) == set()
    assert len(await store.list_annotations(run, AnnotationFilter(limit=2))) == 2
    assert await keys(key_prefix="DECISION.") == set()


async def test_annotation_values_and_envelope_round_trip(store: Store) -> None:
    run = await new_run(store)
    row = note(
        "decision.outcome",
        b"\xa3low",
        scope="step",
        scope_id="classify",
        step_id="step_1",
        attempt=2,
        actor_kind="agent",
        actor_id="triage",
        actor_version="v3",
        payload=b"\x81\xa1a\x01",
        idempotency_key="k",
    )
    await store.create_batch([AttachAnnotations(run, (row,))])
    (stored,) = await store.list_annotations(run)
    assert stored.id.startswith("antn_") and stored.run_id == run
    assert (stored.key, stored.value, stored.scope, stored.scope_id, stored.step_id) == (
        "decision.outcome",
        b"\xa3low",
        "step",
        "classify",
        "step_1",
    )
    assert (stored.attempt, stored.actor_kind, stored.actor_id, stored.actor_version) == (
        2,
        "agent",
        "triage",
        "v3",
    )
    assert stored.payload == b"\x81\xa1a\x01" and stored.idempotency_key == "k"
    assert stored.created_at.tzinfo is not None


# -- the global log and cursors -----------------------------------------------------------------


async def test_read_committed_in_commit_order_with_cursor(store: Store) -> None:
    a = await new_run(store)
    b = await new_run(store)
    await store.create_batch([step_created(b, "s1"), step_created(a, "s1")])
    log = await store.read_committed(0)
    positions = [c.position for c in log]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [(c.event.run_id, c.event.event_type) for c in log] == [
        (a, "run_created"),
        (a, "run_started"),
        (b, "run_created"),
        (b, "run_started"),
        (b, "step_created"),
        (a, "step_created"),
    ]
    page = await store.read_committed(log[1].position, limit=2)
    assert [c.position for c in page] == positions[2:4]
    only = await store.read_committed(0, types=["step_created"])
    assert [c.event.run_id for c in only] == [b, a]
    assert await store.get_cursor("mailer") == 0
    await store.save_cursor("mailer", log[3].position)
    assert await store.get_cursor("mailer") == log[3].position


async def test_everything_is_still_there_after_reopening(store_url: str) -> None:
    first = await open_store(store_url)
    if store_url.startswith("memory"):  # by design: a memory store is private to its object
        await new_run(first)
        await first.close()
        assert (await (await open_store(store_url)).list_runs()).items == []
        return
    run = await new_run(first)
    await first.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    await first.create(hook_created(run, "h1", "tok"))
    await first.append_chunks(run, "", 0, [b"x"], close=True)
    await first.create_batch([AttachAnnotations(run, (note("a.b", idempotency_key="k"),))])
    await first.save_cursor("c", 3)
    events = (await first.list_events(run)).items
    await first.close()
    again = await open_store(store_url)
    try:
        assert (await again.list_events(run)).items == events
        assert (await again.get_step(run, "s1")).status is StepStatus.RUNNING
        assert (await again.get_hook("tok")).hook_id == "h1"
        assert [c.data for c in await again.read_chunks(run, "")] == [b"x", b""]
        assert len(await again.list_annotations(run)) == 1
        assert await again.get_cursor("c") == 3
        await refused(again, step_created(run, "s1"), EntityConflictError)
        dup = await again.create_batch(
            [AttachAnnotations(run, (note("a.b", idempotency_key="k"),))]
        )
        assert dup.annotations == [[]]
    finally:
        await again.close()


async def test_notifier_wakes_waiters_on_commit(store: Store) -> None:
    from persistence.notify import run_topic

    run = await new_run(store)
    seen = store.notifier.version(run_topic(run))
    woke: list[bool] = []

    async def waiter() -> None:
        woke.append(await store.notifier.wait(run_topic(run), seen, timeout=5))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        await store.create(step_created(run, "s1"))
    assert woke == [True]


async def test_conditional_writes_refuse_after_another_writer(store: Store) -> None:
    from persistence import ConcurrentWriteError

    run = await new_run(store)
    last = (await store.get_run(run)).last_event_id
    mine = [
        NewEvent(
            run, ev.StepCreated(step_name="s", input=b"", position=0), "s1", if_last_event_id=last
        ),
        NewEvent(run, ev.StepStarted(), "s1", if_last_event_id=last),
    ]
    result = await store.create_batch(mine)
    assert result.accepted(0) and result.accepted(1)
    stale = NewEvent(run, ev.StepCompleted(result=b""), "s1", if_last_event_id=last)
    error = await refused(store, stale, ConcurrentWriteError)
    assert last in str(error)
    assert (await store.get_step(run, "s1")).status is StepStatus.RUNNING
    # a foreign event between two of a writer's events refuses the rest of the group
    now_last = (await store.get_run(run)).last_event_id
    group = await store.create_batch(
        [
            NewEvent(run, ev.StepCompleted(result=b""), "s1", if_last_event_id=now_last),
            NewEvent(run, ev.AnnotationCreated(annotation_id="x", key="a.b", scope="run")),
            NewEvent(run, ev.RunCompleted(output=b""), if_last_event_id=now_last),
        ]
    )
    assert group.accepted(0) and group.accepted(1)
    assert isinstance(group.outcomes[2], ConcurrentWriteError)
    assert (await store.get_run(run)).status is RunStatus.RUNNING


async def test_writer_time_is_kept(store: Store) -> None:
    run = await new_run(store)
    at = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    event = await store.create(NewEvent(run, ev.RunCompleted(output=b""), created_at=at))
    assert event.created_at == at
    assert (await store.list_events(run)).items[-1].created_at == at
    assert (await store.get_run(run)).completed_at == at


async def test_end_of_run_is_notified(store: Store) -> None:
    from persistence.notify import end_topic

    run = await new_run(store)
    seen = store.notifier.version(end_topic(run))
    await store.create(step_created(run, "s1"))
    assert store.notifier.version(end_topic(run)) == seen
    await store.create(completed(run))
    assert await store.notifier.wait(end_topic(run), seen, timeout=5)


async def test_requires_previous_ties_an_event_to_the_one_before(store: Store) -> None:
    parent, child = await new_run(store), await new_run(store)
    await store.create(hook_created(parent, "h1", "tok-req"))
    notice = NewEvent(parent, ev.HookReceived(payload=b"\x01"), "h1", requires_previous=True)
    refused_pair = await store.create_batch([completed(child), completed(child), notice])
    assert refused_pair.accepted(0) and not refused_pair.accepted(1)
    assert isinstance(refused_pair.outcomes[2], EntityConflictError)
    other = await new_run(store)
    accepted_pair = await store.create_batch([completed(other), notice])
    assert accepted_pair.accepted(0) and accepted_pair.accepted(1)
    received = [
        e for e in (await store.list_events(parent)).items if e.event_type == "hook_received"
    ]
    assert len(received) == 1


async def test_notify_all_reaches_a_waiter_between_version_and_wait(store: Store) -> None:
    topic = "run:somewhere"
    seen = store.notifier.version(topic)
    store.notifier.notify_all()
    assert await store.notifier.wait(topic, seen, timeout=0.01)


# -- leases -------------------------------------------------------------------------------------


def ids(leases: list[Lease]) -> list[str]:
    return [lease.run_id for lease in leases]


async def test_leases_split_runs_between_owners(store: Store) -> None:
    pending = run_id()
    await store.create(created(pending))
    running = await new_run(store)  # just started, no lease: its starter is about to claim
    assert ids(await store.claim_runs("a", 30)) == [pending]
    assert await store.claim_runs("b", 30) == []
    assert await store.claim_run("a", running, 30) == Lease(running, 1)
    assert await store.claim_run("b", running, 30) is None
    assert await store.claim_run("a", running, 30) == Lease(running, 1)  # keeping one's own
    assert await store.renew_leases("a", 30) == {pending, running}
    assert await store.renew_leases("b", 30) == set()
    await store.release_leases("a", [running])
    assert await store.renew_leases("a", 30) == {pending}
    assert await store.claim_run("b", running, 30) == Lease(running, 2)  # another owner


async def test_lapsed_and_unclaimed_leases_are_taken_over(store: Store) -> None:
    run = await new_run(store)
    assert await store.claim_run("a", run, 0.05)
    assert await store.claim_runs("b", 0.05) == []
    await anyio.sleep(0.1)  # a's lease lapsed; the unclaimed run is older than a lease
    orphan = await new_run(store)
    await anyio.sleep(0.1)
    taken = await store.claim_runs("b", 0.05)
    assert sorted(taken, key=lambda lease: lease.run_id) == sorted(
        [Lease(run, 2), Lease(orphan, 1)], key=lambda lease: lease.run_id
    )
    assert await store.renew_leases("b", 30) == {run, orphan}
    assert await store.renew_leases("a", 30) == set()
    assert not await store.claim_run("a", run, 30)
    await store.create(completed(run))
    await store.release_leases("b", [run])
    assert await store.claim_runs("c", 0.01) == []  # an ended run is never claimed


async def test_a_lease_owner_is_never_empty(store: Store) -> None:
    """``""`` stands for "no lease yet" in the stores' lease rows: no worker may be it."""
    run = await new_run(store)
    with pytest.raises(ValueError, match="a lease owner is a non-empty worker id, got ''"):
        await store.claim_each("", [run], 30)
    with pytest.raises(ValueError, match="a lease owner is a non-empty worker id, got ''"):
        await store.claim_runs("", 30)
    with pytest.raises(ValueError, match="a lease owner is a non-empty worker id, got ''"):
        LeaseClaim("", 30)
    assert await store.claim_each("a", [run], 30) == [Lease(run, 1)]  # nothing was taken


async def test_claims_page_through_runs_in_id_order_after_a_cursor(store: Store) -> None:
    runs = sorted([run_id() for _ in range(5)])
    for run in runs:
        await store.create(created(run))
    first = ids(await store.claim_runs("a", 30, 2))
    assert first == runs[:2]
    assert ids(await store.claim_runs("a", 30, 2, after=first[-1])) == runs[2:4]
    assert ids(await store.claim_runs("a", 30, 2, after=runs[3])) == runs[4:]
    assert await store.claim_runs("a", 30, 2, after=runs[4]) == []
    assert await store.claim_runs("b", 30) == []  # every one is held


def _claiming(event: NewEvent, owner: str, seconds: float = 30) -> NewEvent:
    return msgspec.structs.replace(event, claim=LeaseClaim(owner, seconds))


async def test_a_run_created_with_a_claim_takes_its_lease_in_the_same_write(
    store: Store,
) -> None:
    assert store.claims_in_write
    run = run_id()
    batch = [_claiming(created(run), "a"), started(run)]
    result = await store.create_batch(batch)
    assert result.accepted(0) and result.accepted(1)
    assert result.leases == {run: 1}
    assert await store.claim_run("b", run, 30) is None  # a's, and live
    assert await store.renew_leases("a", 30) == {run}
    ok = await store.create_batch([_fenced(step_created(run, "s1"), 1)])
    assert ok.accepted(0)
    stale = await store.create_batch([_fenced(step_started(run, "s1"), 2)])
    assert isinstance(stale.outcomes[0], LeaseLostError)


async def test_a_claim_is_refused_with_its_run_while_another_owner_holds_the_id(
    store: Store,
) -> None:
    run, other = run_id(), run_id()
    assert await store.claim_run("b", run, 30) == Lease(run, 1)  # b is starting it
    result = await store.create_batch(
        [_claiming(created(run), "a"), started(run), _claiming(created(other), "a")]
    )
    assert isinstance(result.outcomes[0], EntityConflictError)
    assert f"run {run!r} is being started by worker 'b'" in str(result.outcomes[0])
    assert isinstance(result.outcomes[1], RunNotFoundError)  # nothing of it was written
    assert result.accepted(2)  # one request's refusal never refuses the others
    assert result.leases == {other: 1}
    with pytest.raises(RunNotFoundError):
        await store.get_run(run)
    assert await store.renew_leases("b", 30) == {run}
    assert await store.renew_leases("a", 30) == {other}


async def test_a_claim_keeps_its_owners_epoch_and_moves_a_lapsed_one(store: Store) -> None:
    mine, lapsed = run_id(), run_id()
    assert await store.claim_run("a", mine, 30) == Lease(mine, 1)
    assert await store.claim_run("b", lapsed, 0.01) == Lease(lapsed, 1)
    await anyio.sleep(0.05)
    result = await store.create_batch(
        [_claiming(created(mine), "a"), _claiming(created(lapsed), "a")]
    )
    assert result.leases == {mine: 1, lapsed: 2}
    assert await store.renew_leases("a", 30) == {mine, lapsed}
    # the epochs returned are the ones claims and fences then see
    assert await store.claim_each("a", [mine, lapsed], 30) == [Lease(mine, 1), Lease(lapsed, 2)]
    fenced = await store.create_batch(
        [_fenced(started(mine), 1), _fenced(started(lapsed), 2), _fenced(completed(mine), 2)]
    )
    assert fenced.accepted(0) and fenced.accepted(1)
    assert isinstance(fenced.outcomes[2], LeaseLostError)


async def test_a_run_created_and_ended_in_one_batch_leaves_its_lease_lapsed(
    store: Store,
) -> None:
    run = run_id()
    result = await store.create_batch([_claiming(created(run), "a"), started(run), completed(run)])
    assert result.accepted(2) and result.leases == {run: 1}
    assert await store.renew_leases("a", 30) == set()  # an ended run is nobody's to execute
    assert await store.claim_run("b", run, 30) == Lease(run, 2)


async def test_a_claim_on_another_event_than_run_created_is_a_clear_error(
    store: Store,
) -> None:
    run = await new_run(store)
    with pytest.raises(ValueError, match=r"run_created|claim_each"):
        await store.create_batch([_claiming(step_created(run, "s1"), "a")])
    assert await types_of(store, run) == ["run_created", "run_started"]


async def test_a_released_run_is_claimable_at_once(store: Store) -> None:
    run = await new_run(store)
    assert await store.claim_run("a", run, 30)
    await store.release_leases("a", [run])
    assert ids(await store.claim_runs("b", 30)) == [run]
    assert not await store.claim_run("a", run, 30)


async def test_a_worker_claims_only_runs_of_workflows_it_hosts(store: Store) -> None:
    mine, theirs = run_id(), run_id()
    await store.create(created(mine, "orders"))
    await store.create(created(theirs, "billing"))
    assert ids(await store.claim_runs("a", 30, workflows=["orders", "other"])) == [mine]
    assert await store.claim_runs("a", 30, workflows=[]) == []
    assert ids(await store.claim_runs("b", 30, workflows=None)) == [theirs]


async def test_the_runs_of_a_dead_owner_are_claimable_at_once(store: Store) -> None:
    run = await new_run(store)
    assert await store.claim_run("dead", run, 30) == Lease(run, 1)
    assert await store.claim_runs("b", 30) == []
    assert await store.claim_runs("b", 30, dead=["dead"]) == [Lease(run, 2)]


async def test_a_sweep_pages_through_every_kind_of_claimable_run_in_id_order(
    store: Store,
) -> None:
    old = await new_run(store)  # running and never claimed: its starter died
    lapsed, dead, live = [await new_run(store) for _ in range(3)]
    assert await store.claim_run("x", lapsed, 0.01)
    assert await store.claim_run("gone", dead, 30)
    assert await store.claim_run("x", live, 30)
    ended = await new_run(store)
    await store.create(completed(ended))
    await anyio.sleep(0.4)  # older than the sweep's lease, and x's short lease lapsed
    pending, other = run_id(), run_id()
    await store.create(created(pending))
    await store.create(created(other, "other"))  # a workflow the sweep does not host
    young = await new_run(store)  # started just now: its starter is about to claim it
    claimable = sorted([old, lapsed, dead, pending])
    first = await store.claim_runs("a", 0.3, 3, workflows=["wf"], dead=["gone"])
    assert ids(first) == claimable[:3]
    after = first[-1].run_id
    rest = await store.claim_runs("a", 0.3, 3, workflows=["wf"], dead=["gone"], after=after)
    assert ids(rest) == claimable[3:]
    epochs = {lease.run_id: lease.epoch for lease in first + rest}
    assert epochs == {old: 1, lapsed: 2, dead: 2, pending: 1}
    assert young not in epochs and live not in epochs


async def test_a_write_fenced_by_a_lost_lease_is_refused(store: Store) -> None:
    run = await new_run(store)
    lease = await store.claim_run("a", run, 30)
    assert lease is not None
    ok = await store.create_batch([_fenced(step_created(run, "s1"), lease.epoch)])
    assert ok.accepted(0)
    await store.release_leases("a", [run])
    assert await store.claim_run("b", run, 30) == Lease(run, lease.epoch + 1)
    stale = await store.create_batch(
        [
            _fenced(step_started(run, "s1"), lease.epoch),
            AttachAnnotations(run, (NewAnnotation(key="k", value=b"\x01"),), fence=lease.epoch),
        ]
    )
    assert all(isinstance(o, LeaseLostError) for o in stale.outcomes), stale.outcomes
    assert await types_of(store, run) == ["run_created", "run_started", "step_created"]
    fresh = await store.create_batch([_fenced(step_started(run, "s1"), lease.epoch + 1)])
    assert fresh.accepted(0)
    unleased = await new_run(store)  # a fenced write to a run nobody holds is refused too
    (outcome,) = (await store.create_batch([_fenced(cancelled(unleased), 1)])).outcomes
    assert isinstance(outcome, LeaseLostError)


async def test_claims_of_named_runs_are_taken_together_and_skip_live_ones(store: Store) -> None:
    free, mine, theirs, lapsed = [await new_run(store) for _ in range(4)]
    unborn = run_id()  # a starter claims its new run before writing it
    assert await store.claim_run("a", mine, 30) == Lease(mine, 1)
    assert await store.claim_run("b", theirs, 30) == Lease(theirs, 1)
    assert await store.claim_run("b", lapsed, 0.01)
    await anyio.sleep(0.05)
    asked = [lapsed, theirs, unborn, free, mine, free]
    assert await store.claim_each("a", asked, 30) == [
        Lease(lapsed, 2),
        Lease(unborn, 1),
        Lease(free, 1),
        Lease(mine, 1),
    ]
    assert await store.renew_leases("a", 30) == {lapsed, unborn, free, mine}
    assert await store.renew_leases("b", 30) == {theirs}
    assert await store.claim_each("b", [], 30) == []


async def test_a_write_that_ends_a_run_lets_its_lease_lapse(store: Store) -> None:
    ended, refused_end, other = [await new_run(store) for _ in range(3)]
    for run in (ended, refused_end, other):
        assert await store.claim_run("a", run, 30)
    result = await store.create_batch(
        [
            completed(ended),
            NewEvent(refused_end, ev.RunCompleted(output=b"\xc0"), if_last_event_id="stale"),
        ]
    )
    assert result.accepted(0) and not result.accepted(1)
    assert await store.renew_leases("a", 30) == {refused_end, other}  # whoever held it
    await store.create(cancelled(other))  # another writer (a client) ends a held run
    assert await store.renew_leases("a", 30) == {refused_end}
    rerun = NewEvent(ended, ev.RunRerun(generation=1, from_position=0))
    await store.create(rerun)  # revived: claimable at once, by its old owner or another
    assert await store.claim_runs("b", 30) == [Lease(ended, 2)]


def _fenced(request: NewEvent, epoch: int) -> NewEvent:
    import msgspec

    return msgspec.structs.replace(request, fence=epoch)


async def test_workers_beat_and_are_listed_until_they_expire(store: Store) -> None:
    now = datetime.now(UTC)
    alive = WorkerInfo(
        worker_id="w1",
        host="h",
        pid=12,
        workflows=("orders", "billing"),
        seen_at=now,
        expires_at=now + timedelta(seconds=30),
    )
    gone = WorkerInfo(worker_id="w2", host="h", pid=13, workflows=(), seen_at=now, expires_at=now)
    await store.beat(alive)
    await store.beat(gone)
    await anyio.sleep(0.01)
    workers = await store.list_workers()
    assert [w.worker_id for w in workers] == ["w1"]
    assert workers[0].workflows == ("orders", "billing") and workers[0].pid == 12
    await store.remove_worker("w1")
    assert await store.list_workers() == []


async def test_a_payload_key_is_recorded_once_and_found_after_release(store: Store) -> None:
    run = await new_run(store)
    await store.create(hook_created(run, "h1", "approve"))
    first = NewEvent(run, ev.HookReceived(payload=b"\x01", idempotency_key="k1"), "h1")
    again = NewEvent(run, ev.HookReceived(payload=b"\x02", idempotency_key="k1"), "h1")
    other = NewEvent(run, ev.HookReceived(payload=b"\x03", idempotency_key="k2"), "h1")
    result = await store.create_batch([first, again, other])
    assert result.accepted(0) and result.accepted(2)
    refusal = result.outcomes[1]
    assert isinstance(refusal, PayloadRecordedError) and refusal.run_id == run
    assert await store.find_payload("approve", "k1") == run
    assert await store.find_payload("approve", "nope") is None
    await store.create(hook_disposed(run, "h1"))
    assert await store.find_payload("approve", "k2") == run  # the hook is released: still found
    assert await store.find_payload("other-token", "k1") is None


async def test_a_token_resolves_to_its_live_hook_else_to_the_run_that_recorded_the_key(
    store: Store,
) -> None:
    assert await store.resolve_hook("approve", "k1") is None  # no hook ever held it
    old = await new_run(store)
    await store.create(hook_created(old, "h1", "approve"))
    live = await store.resolve_hook("approve", None)
    assert isinstance(live, Hook) and (live.run_id, live.hook_id) == (old, "h1")
    received = ev.HookReceived(payload=b"\x01", idempotency_key="k1")
    assert (await store.create_batch([NewEvent(old, received, "h1")])).accepted(0)
    assert isinstance(await store.resolve_hook("approve", "k1"), Hook)  # live comes first
    await store.create(hook_disposed(old, "h1"))
    assert await store.resolve_hook("approve", "k1") == old  # released: the key's run
    assert await store.resolve_hook("approve", "k2") is None
    assert await store.resolve_hook("approve", None) is None
    new = await new_run(store)
    await store.create(hook_created(new, "h1", "approve"))  # the token is held again
    again = await store.resolve_hook("approve", "k1")
    assert isinstance(again, Hook) and again.run_id == new
    assert await store.resolve_hook("other-token", "k1") is None


# -- dormant runs (taken over without a replay) -----------------------------------------------


async def test_dormant_runs_are_those_whose_program_asked_last_and_only_waits(store: Store) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    sleeper = await new_run(store)
    await store.create_batch(
        [step_created(sleeper, "s1"), step_started(sleeper, "s1"), step_completed(sleeper, "s1")]
    )
    await store.create(wait_created(sleeper, "w1", later, position=1))
    hooked = await new_run(store)
    await store.create_batch(
        [wait_created(hooked, "w1", later), hook_created(hooked, "h1", f"tok-{hooked}", 1)]
    )
    answered_late = await new_run(store)  # a payload came after the program's last request
    await store.create(hook_created(answered_late, "h1", f"tok-{answered_late}"))
    await store.create(hook_received(answered_late, "h1"))
    stepping = await new_run(store)  # a step runs beside the sleep
    await store.create_batch(
        [
            step_created(stepping, "s1"),
            step_started(stepping, "s1"),
            wait_created(stepping, "w1", later, position=1),
        ]
    )
    streaming = await new_run(store)  # a stream left open
    await store.append_chunks(streaming, "out", 0, [b"x"], close=False)
    await store.create(wait_created(streaming, "w1", later))
    pending = run_id()  # created, never started
    await store.create(created(pending))
    ended = await new_run(store)
    await store.create(wait_created(ended, "w1", later))
    await store.create(cancelled(ended))
    asked = [sleeper, hooked, answered_late, stepping, streaming, pending, ended, "wrun_missing"]

    found = await store.dormant_runs([*asked, sleeper])

    assert set(found) == {sleeper, hooked}
    assert found[sleeper].waits == (("w1", later),) and found[sleeper].hooks == ()
    assert found[hooked].waits == (("w1", later),)
    assert found[hooked].hooks == (("h1", f"tok-{hooked}"),)
    assert await store.dormant_runs([]) == {}
