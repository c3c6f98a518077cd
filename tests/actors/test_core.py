"""The run core without I/O: table-driven cases and generated interleavings of inputs.

The world around the core (``world.py``) is a model store that uses the stores' own
planner, an executor, timers and callers, all synchronous. Hypothesis drives it with
completions, retries, failures, timers, payloads, cancels, wake-ups, other writers, duplicate
deliveries, crashes of the actor and store faults, and the world checks its invariants after
every input.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core import Phase
from actors.messages import Cancel, WakeUp
from actors.program import Completed
from persistence import RunStatus, codec, fold
from runtime import create_hook, sleep, step, workflow
from runtime.program import WorkflowProgram

from .world import RUN, Caller, World


@step(name="model:inc")
async def inc(x: int) -> int:
    return x + 1


@workflow(name="model:flow")
async def flow(n: int) -> int:
    total = await inc(n)
    a, b = await asyncio.gather(inc(total), inc(total + 1))
    await sleep(3600)
    hook = create_hook(token="model-token")
    payload = await hook
    done, _ = await asyncio.wait(
        [asyncio.ensure_future(inc(a + b)), asyncio.ensure_future(sleep(60))],
        return_when=asyncio.FIRST_COMPLETED,
    )
    return int(payload == "p") + len(done)


def finish_all(world: World) -> None:
    while world.bodies:
        world.finish(0, "completed")


# -- table-driven cases -------------------------------------------------------------------


def test_the_hot_path_writes_one_batch_per_step() -> None:
    world = World(flow)
    begin = world.begin(1)
    assert begin.done and begin.value is True
    types = [e.event_type for e in world.log]
    assert types == ["run_created", "run_started", "step_created", "step_started"]
    world.finish(0, "completed")  # step 1's end and both gathered starts share a write
    assert [e.event_type for e in world.log[4:]] == [
        "step_completed",
        "step_created",
        "step_started",
        "step_created",
        "step_started",
    ]
    world.check()


def test_a_run_goes_to_its_end_and_releases_everything() -> None:
    world = World(flow)
    world.begin(1)
    finish_all(world)
    finish_all(world)
    world.fire_kind("wait:")  # the hour-long sleep
    world.payload("p")
    finish_all(world)
    assert world.state.run is not None and world.state.run.status is RunStatus.COMPLETED
    assert world.ended and not world.timers and not world.hooks and world.core is None
    world.check()


def test_a_refused_write_replays_and_answers_the_caller_once() -> None:
    world = World(flow)
    world.begin(1)
    finish_all(world)
    finish_all(world)
    world.fire_kind("wait:")
    world.foreign("payload")  # another process sends a payload first
    world.payload("p")  # ours is handled after a replay
    assert [c.value for c in world.callers[-1:]] == [RUN]
    received = [e for e in world.log if e.event_type == "hook_received"]
    assert len(received) == 2
    world.check()


def test_a_transient_failure_is_retried_until_the_store_is_back() -> None:
    world = World(flow)
    world.begin(1)
    world.faults.extend(["fail", "fail", "fail"])
    world.finish(0, "completed")
    for _ in range(3):
        assert world.backoff and world.core is not None
        world.retry()
    assert not world.backoff
    assert [e.event_type for e in world.log].count("step_started") == 3
    world.check()


def test_a_lost_reply_is_not_written_twice() -> None:
    """The write was stored but its reply lost: the retry is refused, the log tells."""
    world = World(flow)
    world.begin(1)
    finish_all(world)
    finish_all(world)
    world.fire_kind("wait:")
    world.faults.append("lost")
    world.payload("p")
    world.retry()
    assert world.callers[-1].value == RUN
    assert [e.event_type for e in world.log].count("hook_received") == 1
    world.check()


def test_a_new_run_gives_up_telling_its_caller_then_finds_it_was_stored() -> None:
    world = World(flow)
    world.faults.extend(["lost", "fail", "fail", "fail", "fail", "fail"])
    begin = world.begin(1)
    while not begin.done:
        world.retry()
    assert begin.error is not None
    assert world.backoff is False and world.core is not None  # it reads the log to see
    assert world.core.phase is Phase.READY  # the first try was stored: the run goes on
    world.check()


def test_a_permanent_failure_tells_a_new_runs_caller_at_once() -> None:
    world = World(flow)
    world.faults.append("permanent")
    begin = world.begin(1)
    assert begin.done and begin.error is not None and not world.log
    assert world.core is None


def test_a_crash_after_a_write_does_not_run_a_completed_step_again() -> None:
    world = World(flow)
    world.begin(1)
    world.faults.append("crash")
    world.finish(0, "completed")  # stored, then the actor crashed before acting on it
    assert [e.event_type for e in world.log].count("step_completed") == 1
    starts = [k for k, n in world.started.items() if n]
    assert len(starts) == 3  # step 1, then the two gathered steps (restarted once each)
    world.check()


def test_program_errors_become_the_outcome_with_the_completion_before_them() -> None:
    class Exploding:
        def __init__(self) -> None:
            self.fed = 0

        def feed(self, event: object) -> None:
            self.fed += 1
            if getattr(event, "event_type", "") == "step_completed":
                raise RecursionError("maximum recursion depth exceeded")

        def take_commands(self) -> list[object]:
            return []

        def take_annotations(self) -> list[object]:
            return []

        def take_outcome(self) -> None:
            return None

        def close(self) -> None:
            return None

    world = World(flow)
    world.begin(1)
    core = world.core
    assert core is not None
    core.driver.program = Exploding()  # type: ignore[assignment]
    world.finish(0, "completed")
    types = [e.event_type for e in world.log]
    assert types[-2:] == ["step_completed", "run_failed"]
    failed = world.log[-1].data
    assert failed.error.type == "RecursionError" and failed.error.code == "RUNTIME_ERROR"  # type: ignore[union-attr]
    assert world.ended
    world.check()


def test_a_cancel_ends_the_run_and_answers_late_callers() -> None:
    world = World(flow)
    world.begin(1)
    cancel = Caller("cancel")
    late = Caller("late")
    world.deliver(Cancel("stop", cancel), Cancel("again", late))  # type: ignore[arg-type]
    assert cancel.value is True and late.value is True
    assert world.state.run is not None and world.state.run.status is RunStatus.CANCELLED
    assert world.ended and not world.bodies
    after = Caller("after")
    world.deliver(Cancel("once more", after))  # type: ignore[arg-type]
    assert after.done and after.value is False  # it had ended: loaded, answered, stopped
    world.check()


def test_passivation_unloads_and_the_timer_loads_it_again() -> None:
    world = World(flow, passivate_after=0)
    world.begin(1)
    finish_all(world)
    finish_all(world)
    assert world.core is None  # only sleeping: passivated at once
    assert any(k.startswith("wait:") for k in world.timers)
    world.fire_kind("wait:")
    assert world.core is None and world.hooks  # waiting on the hook now: passivated again
    world.payload("p")
    finish_all(world)
    assert world.state.run is not None and world.state.run.status is RunStatus.COMPLETED


def test_a_crash_before_a_write_keeps_the_finished_result() -> None:
    """The actor crashed before writing a step's end: the restarted actor has the end in
    hand (redelivered), so it does not start the step again."""
    world = World(flow)
    world.begin(1)
    world.faults.append("crash-before")
    world.finish(0, "completed")
    assert [e.event_type for e in world.log].count("step_completed") == 1
    assert sum(world.started.values()) == 3  # step 1 once, then the two gathered steps
    world.check()


def test_a_restarted_process_arms_what_is_due_and_restarts_lost_attempts() -> None:
    world = World(flow)
    world.begin(1)
    world.finish(0, "retry")  # pending, with a retry timer
    world.restart()  # timers and bodies are gone with the process
    assert "step:" in "".join(world.timers)
    world.check()
    world.fire_kind("step:")
    world.finish(0, "completed")  # step 1's second attempt; the gathered two start
    assert len(world.bodies) == 2
    world.restart()  # they were running: their lost attempts are started again
    assert len(world.bodies) == 2
    assert all(work.attempt == 2 for work in world.bodies.values())
    finish_all(world)
    world.restart()  # sleeping: the wait's timer is armed again
    assert any(k.startswith("wait:") for k in world.timers)
    world.fire_kind("wait:")
    world.restart()  # waiting on the hook: routed again
    assert world.hooks == {"model-token": world.state.hooks[next(iter(world.state.hooks))].hook_id}
    world.check()


def test_a_store_down_while_loading_is_retried() -> None:
    world = World(flow, passivate_after=0)
    world.begin(1)
    finish_all(world)
    finish_all(world)
    assert world.core is None  # passivated
    world.faults.extend(["read", "read"])
    world.fire_kind("wait:")
    assert world.backoff
    world.retry()
    world.retry()
    assert not world.backoff
    world.check()


# -- generated interleavings --------------------------------------------------------------

actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("finish"),
            st.integers(0, 3),
            st.sampled_from(["completed", "retry", "failed", "completed"]),
        ),
        st.tuples(st.just("fire"), st.integers(0, 3), st.just("")),
        st.tuples(st.just("payload"), st.just(0), st.sampled_from(["p", "q"])),
        st.tuples(st.just("foreign"), st.just(0), st.sampled_from(["payload", "wake", "cancel"])),
        st.tuples(st.just("cancel"), st.just(0), st.just("")),
        st.tuples(st.just("wake"), st.just(0), st.just("")),
        st.tuples(st.just("duplicate"), st.integers(0, 9), st.just("")),
        st.tuples(st.just("crash"), st.just(0), st.just("")),
        st.tuples(st.just("restart"), st.just(0), st.just("")),
        st.tuples(
            st.just("fault"),
            st.just(0),
            st.sampled_from(["fail", "lost", "crash", "crash-before", "read", "permanent"]),
        ),
        st.tuples(st.just("retry"), st.just(0), st.just("")),
        st.tuples(st.just("tick"), st.integers(1, 7200), st.just("")),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(
    actions,
    st.sampled_from([0.0, 60.0]),
    st.booleans(),
    st.sampled_from([None, "fail", "lost", "crash", "crash-before"]),
)
def test_any_interleaving_keeps_the_invariants(
    steps: list[tuple[str, int, str]], passivate_after: float, claims: bool, first: str | None
) -> None:
    world = World(flow, passivate_after=passivate_after, claims=claims)
    if first is not None:  # the first write (which takes the lease, with claims) fails
        world.faults.append(first)
    begin = world.begin(1)
    world.check()
    for action, number, text in steps:
        if action == "retry":
            if world.backoff:
                world.retry()
        elif world.backoff and action not in ("fault", "tick"):
            continue  # the actor is busy backing off; messages wait in its mailbox
        elif action == "finish":
            world.finish(number, text)
        elif action == "fire":
            world.fire(number)
        elif action == "payload":
            world.payload(text)
        elif action == "foreign":
            world.foreign(text)
        elif action == "cancel":
            world.deliver(Cancel(None, Caller("cancel")))  # type: ignore[arg-type]
        elif action == "wake":
            world.deliver(WakeUp(None, Caller("wake")))  # type: ignore[arg-type]
        elif action == "duplicate":
            world.duplicate(number)
        elif action == "crash":
            world.crash()
        elif action == "restart":
            world.restart()
        elif action == "fault":
            world.faults.append(text)
        elif action == "tick":
            world.clock += timedelta(seconds=number)
        world.check()
    # drain: the run always reaches its end once the store works and events keep coming
    world.faults.clear()
    for _ in range(200):
        run = world.state.run
        if run is not None and run.status.terminal:
            break
        if world.backoff:
            world.retry()
        elif world.bodies:
            world.finish(0, "completed")
        elif world.hooks:
            world.payload("p")
        else:
            world.fire(0)
        world.check()
    run = world.state.run
    if run is None:  # never stored: its caller was told why
        assert begin.done and begin.error is not None, begin
        return
    assert run.status.terminal, f"the run never ended: {run}"


def test_the_world_replays_a_completed_log_to_the_same_outcome() -> None:
    world = World(flow)
    world.begin(1)
    finish_all(world)
    finish_all(world)
    world.fire_kind("wait:")
    world.payload("p")
    finish_all(world)
    run = fold(world.log).run
    assert run is not None and run.output is not None
    program = WorkflowProgram(run, flow)
    for event in world.log:
        program.feed(event)
    outcome = program.take_outcome()
    assert isinstance(outcome, Completed) and outcome.output == run.output
    assert codec.decode(run.output) == 2


@pytest.mark.parametrize("claims", [False, True])
def test_a_first_write_stored_then_refused_for_good_on_its_retry_goes_on(claims: bool) -> None:
    world = World(flow, passivate_after=0.0, claims=claims)
    world.faults.extend(["lost", "permanent"])  # stored, reply lost; the retry fails for good
    begin = world.begin(1)
    world.retry()
    assert begin.done and begin.error is not None  # the caller was told
    world.check()  # ...and the run it did store is read back and goes on here
    assert world.bodies, "the stored run's first step runs"


def test_a_first_write_never_stored_leaves_no_run_and_tells_its_caller() -> None:
    world = World(flow, passivate_after=0.0)
    world.faults.extend(["fail", "permanent"])
    begin = world.begin(1)
    world.retry()
    world.check()
    assert world.state.run is None and begin.done and begin.error is not None
