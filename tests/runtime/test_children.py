"""Child runs: started durably, awaited durably, failures caught, cancel cascades."""

from __future__ import annotations

import anyio
import pytest

from persistence import RunStatus, Store
from runtime import (
    RunCancelledError,
    RunFailedError,
    Runtime,
    current_runtime,
    sleep,
    start_child,
    step,
    workflow,
)

pytestmark = pytest.mark.anyio


@step
async def double(x: int) -> int:
    return 2 * x


@workflow
async def child_ok(x: int) -> int:
    return await double(x)


@workflow
async def child_fails(message: str) -> int:
    raise ValueError(message)


@workflow
async def child_sleeps() -> str:
    await sleep(3600)
    return "never"


@workflow
async def parent(x: int) -> dict[str, object]:
    first = start_child(child_ok, x)
    second = start_child(child_ok, x + 1)
    failing = start_child(child_fails, "bad child")
    results: dict[str, object] = {"sum": await first.result() + await second.result()}
    try:
        await failing.result()
    except RunFailedError as error:
        results["caught"] = [error.code, error.message, error.cause.type if error.cause else None]
    results["ids"] = [first.id, second.id]
    return results


@workflow
async def parent_of_sleeper() -> str:
    child = start_child(child_sleeps)
    return str(await child.result())


@step
async def spawn_from_step(x: int) -> str:
    run = await current_runtime().start(child_ok, x)
    return run.id


@workflow
async def spawner(x: int) -> str:
    return await spawn_from_step(x)


async def running_child(rt: Runtime) -> str:
    """The id of the sleeping child run, once it is running."""
    with anyio.fail_after(10):
        while True:
            for run in await rt.list_runs():
                if run.workflow_name == child_sleeps.name and run.status == "running":
                    return run.run_id
            await anyio.sleep(0.01)


async def test_children_results_and_a_failure_the_parent_catches(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[parent, child_ok, child_fails]) as rt:
        run = await rt.start(parent, 10)
        result = await run.result(timeout=20)
        assert result["sum"] == 20 + 22
        assert result["caught"] == ["USER_ERROR", "bad child", "ValueError"]
        first, second = result["ids"]  # type: ignore[misc]
        child = await shared_store.get_run(first)
        assert child.parent_run_id == run.id and child.status is RunStatus.COMPLETED
        assert first != second


async def test_cancelling_a_parent_cancels_its_children(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[parent_of_sleeper, child_sleeps]) as rt:
        run = await rt.start(parent_of_sleeper)
        child_id = None
        with anyio.fail_after(10):
            while child_id is None:
                children = [r for r in await rt.list_runs() if r.workflow_name == child_sleeps.name]
                child_id = children[0].run_id if children else None
                await anyio.sleep(0.01)
        await run.cancel()
        with pytest.raises(RunCancelledError):
            await run.result(timeout=10)
        with pytest.raises(RunCancelledError):
            await rt.get_run(child_id).result(timeout=10)


async def test_a_child_cancelled_alone_is_reported_to_its_parent(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[parent_of_sleeper, child_sleeps]) as rt:
        run = await rt.start(parent_of_sleeper)
        child_id = await running_child(rt)
        await rt.cancel(child_id)
        with pytest.raises(RunFailedError, match="cancelled"):
            await run.result(timeout=10)


async def test_a_step_can_start_a_run(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[spawner, child_ok]) as rt:
        run = await rt.start(spawner, 4)
        spawned = await run.result(timeout=10)
        assert await rt.get_run(spawned).result(timeout=10) == 8


async def test_a_client_cancelling_a_child_tells_the_parent_in_the_same_write(
    shared_store: Store,
) -> None:
    """A client (no actor for the child) writes the child's cancel and the parent's notice
    in one batch: a crash between two writes can no longer leave the parent waiting."""
    from ..faults import FaultyStore

    async with Runtime(shared_store, workflows=[parent_of_sleeper, child_sleeps]) as rt:
        run = await rt.start(parent_of_sleeper)
        child_id = await running_child(rt)
        spy = FaultyStore(shared_store)
        async with Runtime(spy, role="client") as client:  # type: ignore[arg-type]
            assert await client.cancel(child_id) is True
        (batch,) = [b for b in spy.batches if any(r.run_id == child_id for r in b)]
        assert [(r.run_id, r.data.__class__.__name__) for r in batch] == [  # type: ignore[union-attr]
            (child_id, "RunCancelled"),
            (run.id, "HookReceived"),
        ]
        with pytest.raises(RunFailedError, match="cancelled"):
            await run.result(timeout=10)
