"""The runtime's core behaviour, on every store."""

from __future__ import annotations

import anyio
import pytest

from persistence import RunStatus, Store
from runtime import (
    RunNotFoundError,
    Runtime,
    SerializationError,
    WorkflowNotRegisteredError,
    step,
    step_metadata,
    workflow,
)
from tests.conftest import BOTH_SQLITE_WRITERS

from . import workflows as wf

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BOTH_SQLITE_WRITERS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every store kind, and the SQLite store with its writer on the event loop's thread."""
    kind: str = request.param
    return kind


async def test_sequential_steps_and_one_commit_each(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        run = await rt.start(wf.sequential, 5)
        assert await run.result(timeout=10) == 10
        types = [e.event_type for e in await run.events()]
    assert types[:2] == ["run_created", "run_started"]
    assert types.count("step_completed") == 5 and types[-1] == "run_completed"
    info = await run_info(shared_store, run.id)
    assert info.status is RunStatus.COMPLETED


async def run_info(store: Store, run_id: str):  # type: ignore[no-untyped-def]
    return await store.get_run(run_id)


async def test_gather_and_typed_results(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.fan_out, wf.typed_flow]) as rt:
        run = await rt.start(wf.fan_out, 20)
        assert await run.result(timeout=10) == [2 * i for i in range(20)]
        lines = [wf.Line("a", 2), wf.Line("b", 3)]
        typed = await rt.start(wf.typed_flow, "o-1", lines)
        assert await typed.result(timeout=10) == {"receipt": "o-1", "qty": 5}


async def test_asyncio_primitives_work_in_workflows(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.asyncio_features]) as rt:
        run = await rt.start(wf.asyncio_features)
        result = await run.result(timeout=10)
    assert result == {
        "first": [2],
        "pending": 1,
        "group": [4, 6],
        "timeout": True,
        "wait_for": 8,
    }


async def test_idempotent_start_with_run_id(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        first = await rt.start(wf.sequential, 3, run_id="order-42")
        await first.result(timeout=10)
        again = await rt.start(wf.sequential, 99, run_id="order-42")
        assert again.id == "order-42"
        assert await again.result(timeout=10) == 3
        runs = await rt.list_runs(workflow_name=wf.sequential.name)
        assert [r.run_id for r in runs].count("order-42") == 1


async def test_bad_input_is_refused_before_anything_is_stored(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        with pytest.raises(SerializationError, match="argument 0"):
            await rt.start(wf.sequential, object(), run_id="bad-1")
        with pytest.raises(RunNotFoundError):
            await rt.get_run("bad-1").status()
        with pytest.raises(WorkflowNotRegisteredError, match="not registered"):
            await rt.start("no.such:workflow")
        with pytest.raises(ValueError, match="printable"):
            await rt.start(wf.sequential, 1, run_id="")
        assert await rt.list_runs() == []


@workflow(name="tests.basics:hosted_later")
async def hosted_later(x: int) -> int:
    return x + 1


async def test_a_worker_never_fails_a_run_it_lacks_the_code_of(shared_store: Store) -> None:
    """A run of a workflow this worker does not host waits for a worker that does."""
    async with Runtime(shared_store, role="client") as client:
        run = await client.start("tests.basics:hosted_later", 1)
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        await anyio.sleep(0.3)
        assert await rt.get_run(run.id).status() is RunStatus.PENDING
        assert rt.stats()["live_runs"] == 0
    async with Runtime(shared_store, workflows=[hosted_later]) as rt:
        assert await rt.get_run(run.id).result(timeout=10) == 2


async def test_run_handle(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        run = await rt.start(wf.sequential, 2)
        await run.result(timeout=10)
        info = await run.info()
        assert info.workflow_name == wf.sequential.name and info.status == "completed"
        assert info.created_at <= info.started_at <= info.completed_at  # type: ignore[operator]
        assert await run.status() is RunStatus.COMPLETED
        listed = await rt.list_runs(status="completed")
        assert [r.run_id for r in listed] == [run.id]
        with pytest.raises(RunNotFoundError):
            await rt.get_run("wrun_nope").result(timeout=1)


async def test_get_run_must_exist_checks_the_store_at_once(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        run = await rt.start(wf.sequential, 3, run_id="order-7")
        found = await rt.get_run("order-7", must_exist=True)
        assert found.id == "order-7" and await found.result(timeout=10) == 3
        with pytest.raises(RunNotFoundError, match="'wrun_nope'") as caught:
            await rt.get_run("wrun_nope", must_exist=True)
        assert caught.value.run_id == "wrun_nope"
        # The default makes a handle without I/O, even for an unknown id.
        assert rt.get_run("wrun_nope").id == "wrun_nope"
        assert rt.get_run(run.id, must_exist=False).id == run.id
        with pytest.raises(TypeError, match="takes a bool"):
            rt.get_run(run.id, must_exist="yes")  # type: ignore[call-overload]


async def test_metadata_and_determinism_helpers(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.deterministic]) as rt:
        run = await rt.start(wf.deterministic)
        result = await run.result(timeout=10)
    assert result["run"] == run.id
    meta = result["meta"]
    assert meta["step"] == wf.meta.name and meta["attempt"] == 1 and meta["run"] == run.id
    assert meta["id"].startswith("step_")
    assert result["first"] != result["second"]


@workflow
async def unregistered_here() -> int:
    return 1


async def test_step_called_outside_a_workflow_is_a_plain_call() -> None:
    assert await wf.add(2, 3) == 5
    assert await wf.sequential(3) == 3


@step
async def keyed(amount: int) -> tuple[str, str, int, str]:
    meta = step_metadata()
    return meta.step_name, meta.step_id, meta.attempt, f"charge:{meta.step_id}:{amount}"


@step
async def outer() -> tuple[str, str]:
    inner = await keyed(1)  # a step calling a step: a plain call, in the outer step
    return step_metadata().step_id, inner[1]


@workflow
async def nested() -> tuple[str, str]:
    return await outer()


async def test_a_plain_call_of_a_step_has_metadata_of_its_own() -> None:
    name, step_id, attempt, key = await keyed(5)
    assert (name, attempt) == (keyed.name, 1)
    assert step_id.startswith(f"{keyed.name}@step_") and key == f"charge:{step_id}:5"
    assert (await keyed(5))[1] != step_id  # a fresh id per call
    with pytest.raises(RuntimeError, match="only be called in a step"):
        step_metadata()  # only for the duration of the call


async def test_a_step_called_in_a_step_sees_the_outer_steps_metadata() -> None:
    async with Runtime("memory://", workflows=[nested]) as rt:
        run = await rt.start(nested)
        outer_id, inner_id = await run.result(timeout=10)
    assert outer_id == inner_id and outer_id.startswith("step_")
