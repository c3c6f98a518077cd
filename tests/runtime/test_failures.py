"""Life off the happy path, on every store: outages, odd values, and runs that end while
unloaded. Each test reproduces a defect that was seen, through the fault-injecting store."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from typing import Any

import anyio
import pytest

from persistence import RunStatus, Store
from runtime import (
    RunFailedError,
    Runtime,
    SerializationError,
    StepFailedError,
    create_hook,
    sleep,
    step,
    workflow,
)

from ..faults import FaultyStore

pytestmark = pytest.mark.anyio
bodies: Counter[str] = Counter()


async def eventually(check: Any, timeout: float = 15.0) -> None:
    with anyio.fail_after(timeout):
        while not await check():
            await anyio.sleep(0.02)


@step
async def tally(key: str) -> str:
    bodies[key] += 1
    return key


@workflow
async def nap_then_step(key: str, seconds: float) -> str:
    await sleep(seconds)
    return await tally(key)


async def test_passivated_runs_waking_during_an_outage_all_finish(shared_store: Store) -> None:
    """The store is down for 5 s just when 50 passivated sleeps come due: every run ends
    once it is back, without a restart, and each step ran once."""
    tag = uuid.uuid4().hex
    store = FaultyStore(shared_store)
    async with Runtime(store, workflows=[nap_then_step], passivate_after=0) as rt:  # type: ignore[arg-type]
        runs = [await rt.start(nap_then_step, f"{tag}-{i}", 0.5) for i in range(50)]

        async def all_passivated() -> bool:
            return rt.stats()["live_runs"] == 0

        await eventually(all_passivated)
        store.down()
        await anyio.sleep(5.0)  # the sleeps came due meanwhile: their loads fail, and back off
        assert [await _status(shared_store, r.id) for r in runs] == [RunStatus.RUNNING] * 50
        store.up()
        with anyio.fail_after(30):
            results = [await r.result(timeout=30) for r in runs]
    assert results == [f"{tag}-{i}" for i in range(50)]
    assert [bodies[f"{tag}-{i}"] for i in range(50)] == [1] * 50
    assert store.failures["list_events"] + store.failures["create_batch"] > 0


async def _status(store: Store, run_id: str) -> RunStatus:
    return (await store.get_run(run_id)).status


@workflow
async def two_steps(key: str) -> list[str]:
    return [await tally(f"{key}:a"), await tally(f"{key}:b")]


async def test_a_refused_write_replays_and_runs_no_step_twice(shared_store: Store) -> None:
    store = FaultyStore(shared_store)
    async with Runtime(store, workflows=[two_steps]) as rt:  # type: ignore[arg-type]
        tag = uuid.uuid4().hex
        run = await rt.start(two_steps, tag)
        store.refuse_next(3)
        assert await run.result(timeout=10) == [f"{tag}:a", f"{tag}:b"]
    assert bodies[f"{tag}:a"] == 1 and bodies[f"{tag}:b"] == 1


async def test_a_write_lost_after_it_was_stored_is_not_repeated(shared_store: Store) -> None:
    store = FaultyStore(shared_store)
    async with Runtime(store, workflows=[two_steps]) as rt:  # type: ignore[arg-type]
        tag = uuid.uuid4().hex
        run = await rt.start(two_steps, tag)
        store.fail_next(2, after=True)  # stored, but the runtime hears it failed
        assert await run.result(timeout=10) == [f"{tag}:a", f"{tag}:b"]
        types = [e.event_type for e in await run.events()]
    assert types.count("step_completed") == 2 and types.count("run_completed") == 1
    assert bodies[f"{tag}:a"] == 1 and bodies[f"{tag}:b"] == 1


# -- values that cannot be encoded ----------------------------------------------------------


def cyclic() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


def deep() -> list[Any]:
    """Nested deeper than the codec can go (twice the recursion limit, whatever it is)."""
    root: list[Any] = []
    inner = root
    for _ in range(2 * sys.getrecursionlimit()):
        child: list[Any] = []
        inner.append(child)
        inner = child
    return root


@step
async def returns_odd(kind: str, tag: str) -> object:
    bodies[tag] += 1
    return cyclic() if kind == "cyclic" else deep()


@workflow
async def catches_odd(kind: str, tag: str) -> list[object]:
    try:
        await returns_odd(kind, tag)
    except StepFailedError as error:
        return [error.error_type, error.attempts]
    return ["no error"]


@pytest.mark.parametrize("kind", ["cyclic", "deep"])
async def test_a_step_returning_a_cyclic_or_deep_value_fails_at_once(
    shared_store: Store, kind: str
) -> None:
    tag = uuid.uuid4().hex
    async with Runtime(shared_store, workflows=[catches_odd]) as rt:
        run = await rt.start(catches_odd, kind, tag)
        assert await run.result(timeout=10) == ["SerializationError", 1]
    assert bodies[tag] == 1


@step(max_retries=0)
async def once(key: str) -> int:
    bodies[key] += 1
    return 1


@workflow
async def fails_after_a_step(key: str, how: str) -> object:
    await once(key)
    if how == "cyclic":
        return cyclic()
    if how == "recursion":
        return _recurse(0)
    raise KeyError(key)


def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


@pytest.mark.parametrize(
    ("how", "error_type"),
    [("cyclic", "SerializationError"), ("recursion", "RecursionError"), ("key", "KeyError")],
)
async def test_workflow_code_failing_after_a_step_fails_the_run_not_the_step(
    shared_store: Store, how: str, error_type: str
) -> None:
    key = uuid.uuid4().hex
    async with Runtime(shared_store, workflows=[fails_after_a_step]) as rt:
        run = await rt.start(fails_after_a_step, key, how)
        with pytest.raises(RunFailedError) as failure:
            await run.result(timeout=10)
        events = [e.event_type for e in await run.events()]
    assert failure.value.code == "USER_ERROR"
    assert failure.value.cause is not None and failure.value.cause.type == error_type
    assert bodies[key] == 1
    assert events[-2:] == ["step_completed", "run_failed"]


@workflow
async def waits_for(token: str) -> object:
    return await create_hook(token=token)


async def test_cyclic_values_from_a_client_raise_serialization_error(shared_store: Store) -> None:
    from conventions import Annotation

    async with Runtime(shared_store, workflows=[waits_for]) as rt:
        with pytest.raises(SerializationError, match="reference cycle"):
            await rt.start(waits_for, cyclic())
        with pytest.raises(SerializationError, match="nested deeper"):
            await rt.start(waits_for, deep())
        with pytest.raises(SerializationError, match="reference cycle"):
            await rt.start(waits_for, "t", annotations=[Annotation(attributes={"x": cyclic()})])
        assert (await shared_store.list_runs()).items == []
        run = await rt.start(waits_for, "cyclic-payload")
        await eventually(lambda: _hook_exists(rt, "cyclic-payload"))
        with pytest.raises(SerializationError, match="reference cycle"):
            await rt.resume_hook("cyclic-payload", cyclic())
        with pytest.raises(SerializationError, match="reference cycle"):
            await rt.annotations.attach(run.id, attributes={"x": cyclic()})
        assert [e.event_type for e in await run.events()].count("hook_received") == 0
        await rt.resume_hook("cyclic-payload", "fine")
        assert await run.result(timeout=10) == "fine"


async def _hook_exists(rt: Runtime, token: str) -> bool:
    try:
        await rt.get_hook(token)
    except Exception:
        return False
    return True


# -- runs that end while unloaded ------------------------------------------------------------


async def test_runs_cancelled_while_passivated_release_everything(shared_store: Store) -> None:
    """Cancelled by this runtime or by a client elsewhere, an unloaded run's hooks, timers,
    position and lease are released, like any run that ends."""
    async with Runtime(shared_store, workflows=[waits_for], passivate_after=0) as rt:
        runs = [await rt.start(waits_for, f"passive-{i}") for i in range(20)]

        async def settled() -> bool:
            stats = rt.stats()
            return stats["live_runs"] == 0 and stats["hooks"] == 20

        await eventually(settled)
        for run in runs[:10]:
            assert await rt.cancel(run.id) is True
        async with Runtime(shared_store, role="client") as client:
            for run in runs[10:]:
                assert await client.cancel(run.id) is True

        async def released() -> bool:
            stats = rt.stats()
            return stats["hooks"] == 0 and stats["known"] == 0 and stats["timers"] == 0

        await eventually(released)
        for run in runs:
            assert await _status(shared_store, run.id) is RunStatus.CANCELLED
        assert rt.stats()["live_runs"] == 0
        if rt.leased:  # no lease of these runs is held (or renewed) any more
            await eventually(lambda: _holds_none(shared_store, rt.worker_id))


async def _holds_none(store: Store, worker_id: str) -> bool:
    return await store.renew_leases(worker_id, 10.0) == set()


# -- one run id, many starts ---------------------------------------------------------------


async def test_concurrent_starts_of_one_run_id_return_one_run(shared_store: Store) -> None:
    tag = uuid.uuid4().hex
    async with Runtime(shared_store, workflows=[two_steps]) as rt:
        runs = await asyncio.gather(
            *[rt.start(two_steps, tag, run_id="one-run") for _ in range(20)]
        )
        assert {r.id for r in runs} == {"one-run"}
        assert await runs[0].result(timeout=10) == [f"{tag}:a", f"{tag}:b"]
        created = [e for e in await runs[0].events() if e.event_type == "run_created"]
    assert len(created) == 1
    assert bodies[f"{tag}:a"] == 1


# -- shutdown -----------------------------------------------------------------------------


@step
async def stubborn() -> str:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await asyncio.sleep(20)  # ignores the cancellation for a long while
    return "done"


@workflow
async def runs_stubborn() -> str:
    return await stubborn()


async def test_leaving_does_not_wait_for_a_step_that_ignores_cancellation(
    shared_store: Store,
) -> None:
    async with Runtime(shared_store, workflows=[runs_stubborn], shutdown_grace=0.2) as rt:
        await rt.start(runs_stubborn)

        async def running() -> bool:
            return rt.stats()["running_steps"] == 1

        await eventually(running)
        left = time.monotonic()
    assert time.monotonic() - left < 5.0


entered: Counter[str] = Counter()


@step
async def quick(seconds: float, key: str) -> str:
    entered[key] += 1
    await asyncio.sleep(seconds)
    bodies[key] += 1
    return key


@workflow
async def quick_then_more(key: str) -> list[str]:
    return [await quick(0.3, f"{key}:1"), await quick(0.0, f"{key}:2")]


async def test_leaving_lets_running_steps_finish_and_records_them(shared_store: Store) -> None:
    key = uuid.uuid4().hex
    async with Runtime(shared_store, workflows=[quick_then_more], shutdown_grace=5) as rt:
        run = await rt.start(quick_then_more, key)

        async def inside() -> bool:
            return entered[f"{key}:1"] == 1

        await eventually(inside)
    types = [e.event_type for e in await _events(shared_store, run.id)]
    assert types.count("step_completed") == 1  # the first step finished within the grace
    assert types.count("step_started") == 1  # and no new body was started while leaving
    assert bodies[f"{key}:1"] == 1
    async with Runtime(shared_store, workflows=[quick_then_more]) as rt:
        assert await rt.get_run(run.id).result(timeout=10) == [f"{key}:1", f"{key}:2"]
    assert bodies[f"{key}:1"] == 1 and bodies[f"{key}:2"] == 1


async def _events(store: Store, run_id: str) -> list[Any]:
    return (await store.list_events(run_id)).items


async def test_callers_waiting_when_the_runtime_leaves_get_runtime_closed(
    shared_store: Store,
) -> None:
    from runtime import RuntimeClosedError

    store = FaultyStore(shared_store)
    outcome: list[BaseException | str] = []
    async with Runtime(store, workflows=[waits_for], shutdown_grace=0.1) as rt:  # type: ignore[arg-type]
        await rt.start(waits_for, "closing")
        await eventually(lambda: _hook_exists(rt, "closing"))
        store.down()  # the payload cannot be written: the run's actor backs off

        async def resume() -> None:
            try:
                outcome.append(await rt.resume_hook("closing", "late"))
            except BaseException as error:
                outcome.append(error)

        waiting = asyncio.ensure_future(resume())
        await anyio.sleep(0.3)
        assert not waiting.done()
        left = time.monotonic()
    with anyio.fail_after(5):
        await waiting
    assert time.monotonic() - left < 5.0
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeClosedError)
    store.up()
    with pytest.raises(RuntimeClosedError):
        await rt.resume_hook("closing", "after")


async def test_a_failing_enter_leaves_nothing_running(shared_store: Store) -> None:
    store = FaultyStore(shared_store)
    store.fail_next(1, methods=("list_runs", "claim_runs"))
    before = {t for t in asyncio.all_tasks() if not t.done()}
    rt = Runtime(store, workflows=[waits_for])  # type: ignore[arg-type]
    with pytest.raises(Exception, match="injected"):
        await rt.__aenter__()
    await anyio.sleep(0.05)
    left_running = {t for t in asyncio.all_tasks() if not t.done()} - before
    assert not left_running, [t.get_name() for t in left_running]
    with pytest.raises(RuntimeError, match="not running"):
        _ = rt.store


async def test_a_failing_enter_closes_the_store_it_opened(tmp_path: Any) -> None:
    import threading

    class FailsToRecover(Runtime):
        async def _recover(self) -> None:
            raise RuntimeError("recovery failed (test)")

    before = set(threading.enumerate())
    rt = FailsToRecover(f"sqlite:///{tmp_path / 'enter.db'}", workflows=[waits_for])
    with pytest.raises(RuntimeError, match="recovery failed"):
        await rt.__aenter__()
    await anyio.sleep(0.1)
    opened = [t.name for t in set(threading.enumerate()) - before]
    assert not [n for n in opened if n.startswith("actorflow-sqlite")]  # the store was closed


disk_gate: dict[str, asyncio.Event] = {}


@step
async def big_result(size: int) -> bytes:
    await disk_gate["full"].wait()  # the test fills the store first
    return os.urandom(size)


@workflow
async def fills_the_disk(size: int) -> int:
    return len(await big_result(size))


async def test_runs_resume_by_themselves_once_a_full_disk_has_room(tmp_path: Any) -> None:
    """A full store (StoreFullError) is not transient for a caller, but a run waits it out:
    its write is retried (at the backoff's cap) and goes through once there is room."""
    import sqlite3

    from persistence.sqlite import SqliteStore

    def pages(conn: sqlite3.Connection) -> int:
        count: int = conn.execute("PRAGMA page_count").fetchone()[0]
        return count

    def limit(count: int) -> Any:
        def set_limit(conn: sqlite3.Connection) -> int:
            result: int = conn.execute(f"PRAGMA max_page_count = {count}").fetchone()[0]
            return result

        return set_limit

    disk_gate["full"] = asyncio.Event()
    store = SqliteStore(f"sqlite:///{tmp_path / 'full.db'}")
    async with store, Runtime(store, workflows=[fills_the_disk], passivate_after=0) as rt:
        run = await rt.start(fills_the_disk, 256 * 1024)
        writer = store._w()
        await writer.call(limit(await writer.call(pages)))  # full: the step's end cannot be written
        disk_gate["full"].set()
        await anyio.sleep(1.0)
        assert await _status(store, run.id) is RunStatus.RUNNING
        await writer.call(limit(1_000_000))  # space is freed
        assert await run.result(timeout=20) == 256 * 1024
