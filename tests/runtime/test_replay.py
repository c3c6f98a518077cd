"""Replay: the same log gives the same commands; different code is non-determinism."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from actors.program import Completed
from persistence import HookNotFoundError, RunStatus, Store, fold
from persistence import events as ev
from runtime import RunFailedError, Runtime, create_hook, registry, step, workflow
from runtime.program import WorkflowProgram

from . import workflows as wf

pytestmark = pytest.mark.anyio


def replay(run_entity: object, log: list[ev.Event], function: object) -> WorkflowProgram:
    program = WorkflowProgram(run_entity, function)  # type: ignore[arg-type]
    for event in log:
        program.feed(event)
    return program


async def test_replaying_a_race_gives_the_same_commands(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.racing]) as rt:
        for _ in range(3):
            run = await rt.start(wf.racing, 8)
            order = await run.result(timeout=20)
            assert sorted(order) == list(range(8))
            log = await run.events()
            state = fold(log)
            program = replay(state.run, log, wf.racing)
            # every durable call was confirmed by the log, none is left to write
            assert program.take_commands() == []
            outcome = program.take_outcome()
            assert isinstance(outcome, Completed)
            assert state.run is not None and outcome.output == state.run.output


@step
async def first_step() -> str:
    return "first"


@step
async def other_step() -> str:
    return "other"


@workflow(name="tests.replay:changing")
async def changing_v1() -> str:
    await first_step()
    hook = create_hook(token=None)
    return str(await hook)


async def test_changed_code_is_non_determinism(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[changing_v1], passivate_after=0) as rt:
        run = await rt.start(changing_v1)
        for _ in range(100):
            if any(e.event_type == "hook_created" for e in await run.events()):
                break
            import anyio

            await anyio.sleep(0.02)

    with new_deployment("tests.replay:changing"):  # the next release changed the code

        @workflow(name="tests.replay:changing")
        async def changing_v2() -> str:
            await other_step()
            return "changed"

        async with Runtime(shared_store, workflows=[changing_v2]) as rt:
            # a run that only waits is taken over without a replay: the change shows when the
            # run wakes (its hook is resumed) and its new code is fed the old log
            (hook,) = await shared_store.list_hooks(run.id)
            with contextlib.suppress(HookNotFoundError):  # the run failed as it woke
                await rt.resume_hook(hook.token, "go")
            with pytest.raises(RunFailedError) as failure:
                await rt.get_run(run.id).result(timeout=10)
    error = failure.value
    assert error.code == "NON_DETERMINISM"
    assert "#0" in error.message
    assert repr(first_step.name) in error.message and repr(other_step.name) in error.message
    assert (await shared_store.get_run(run.id)).status is RunStatus.FAILED


@contextlib.contextmanager
def new_deployment(name: str) -> Iterator[None]:
    """Let a test define another function under a workflow name, as a new release of the
    code would in another process; the first definition is back afterwards."""
    first = registry._workflows.pop(name)
    try:
        yield
    finally:
        registry._workflows[name] = first


async def test_clock_randomness_and_ids_replay_to_the_same_values(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.deterministic]) as rt:
        run = await rt.start(wf.deterministic)
        await run.result(timeout=10)
        log = await run.events()
    state = fold(log)
    program = replay(state.run, log, wf.deterministic)
    outcome = program.take_outcome()
    assert isinstance(outcome, Completed)
    assert state.run is not None and outcome.output == state.run.output  # now(), random(), uuid4()


@workflow(name="tests.replay:hook_maker")
async def hook_maker() -> str:
    return str(await create_hook())


def test_runs_made_before_seeds_keep_their_recorded_tokens() -> None:
    """A log written before runs had a secret seed recorded tokens drawn from the run id;
    replaying it must make the same token, or it would be non-determinism."""
    import random as stdlib_random
    from datetime import UTC, datetime

    from actors.program import CreateHook
    from persistence import Run
    from persistence.state import RunStatus as Status

    at = datetime(2026, 1, 1, tzinfo=UTC)
    legacy = Run(
        run_id="wrun_legacy",
        workflow_name=hook_maker.name,
        status=Status.RUNNING,
        input=b"\x92\x90\x80",
        created_at=at,
        updated_at=at,
        last_event_id="",
    )
    program = WorkflowProgram(legacy, hook_maker)
    program.feed(ev.Event("e1", legacy.run_id, "run_started", None, ev.RunStarted(), at))
    (command,) = program.take_commands()
    assert isinstance(command, CreateHook)
    rng = stdlib_random.Random("wrun_legacy")
    assert command.token == "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24)
    )
    program.close()
