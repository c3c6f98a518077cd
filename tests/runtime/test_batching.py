"""Group commit: one commit per sequential step, runs share commits, waits due together
(on stores whose writes wait on I/O; the memory store is written as each run asks)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from persistence import Store
from persistence.batch import Request
from persistence.events import NewEvent
from persistence.records import BatchResult
from runtime import Runtime, sleep, workflow
from tests.conftest import BOTH_SQLITE_WRITERS

from . import workflows as wf

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BOTH_SQLITE_WRITERS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every store kind, and the SQLite store with its writer on the event loop's thread."""
    kind: str = request.param
    return kind


class Recording:
    """A store that remembers every batch written through it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.batches: list[list[Request]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        self.batches.append(list(requests))
        return await self._store.create_batch(requests)


def batches_writes(store: Store) -> bool:
    """Whether the runtime gathers writes on ``store`` (not one that never waits: memory)."""
    return not getattr(store, "writes_inline", False)


def types(batch: list[Request]) -> list[str]:
    return [r.event_type for r in batch if isinstance(r, NewEvent)]


async def test_each_sequential_step_costs_one_commit(shared_store: Store) -> None:
    store = Recording(shared_store)
    async with Runtime(store, workflows=[wf.sequential]) as rt:  # type: ignore[arg-type]
        run = await rt.start(wf.sequential, 10)
        assert await run.result(timeout=10) == 45
    mine = [b for b in store.batches if any(r.run_id == run.id for r in b)]
    assert len(mine) == 11
    assert types(mine[0]) == ["run_created", "run_started", "step_created", "step_started"]
    for batch in mine[1:-1]:
        assert types(batch) == ["step_completed", "step_created", "step_started"]
    assert types(mine[-1]) == ["step_completed", "run_completed"]


async def test_runs_share_commits(shared_store: Store) -> None:
    store = Recording(shared_store)
    async with Runtime(store, workflows=[wf.sequential]) as rt:  # type: ignore[arg-type]
        runs = await asyncio.gather(*(rt.start(wf.sequential, 3) for _ in range(30)))
        await asyncio.gather(*(run.result(timeout=20) for run in runs))
    runs_per_write = max(len({r.run_id for r in b}) for b in store.batches)
    if batches_writes(shared_store):
        assert len(store.batches) < 30 * 4
        assert runs_per_write > 1
    else:  # a store that never waits is written as each run asks, in the run's own task
        assert runs_per_write == 1


@workflow
async def sleep_until(at: datetime) -> str:
    await sleep(at)
    return "woke"


async def test_waits_due_at_the_same_moment_complete_in_one_commit(shared_store: Store) -> None:
    store = Recording(shared_store)
    at = datetime.now(UTC) + timedelta(seconds=0.3)
    async with Runtime(store, workflows=[sleep_until]) as rt:  # type: ignore[arg-type]
        runs = await asyncio.gather(*(rt.start(sleep_until, at) for _ in range(10)))
        assert await asyncio.gather(*(r.result(timeout=10) for r in runs)) == ["woke"] * 10
    completions = [types(b).count("wait_completed") for b in store.batches]
    assert max(completions) == (10 if batches_writes(shared_store) else 1)


async def test_a_sequential_step_on_the_memory_store_takes_two_loop_turns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hot path's hand-offs, counted so they do not creep back: the step's end reaches
    the actor (one turn), which writes it and starts the next body in its task (one turn)."""
    loop_type = type(asyncio.get_running_loop())
    turns = [0]
    run_once = loop_type._run_once  # type: ignore[attr-defined]

    def counted(self: asyncio.AbstractEventLoop) -> None:
        turns[0] += 1
        run_once(self)

    async with Runtime("memory://", workflows=[wf.sequential]) as rt:
        await (await rt.start(wf.sequential, 5)).result(timeout=10)
        monkeypatch.setattr(loop_type, "_run_once", counted)
        await (await rt.start(wf.sequential, 300)).result(timeout=30)
        monkeypatch.undo()
    assert turns[0] / 300 < 2.2, f"{turns[0] / 300:.2f} loop turns per step"


@workflow(name="tests.batching:nap")
async def nap() -> None:
    await sleep(3600)


async def _tracked_per_sleeper(passivate_after: float, settle: float) -> float:
    """Objects the cycle collector tracks per run sleeping on the memory store (its rows
    included), over 500 runs."""
    async with Runtime("memory://", workflows=[nap], passivate_after=passivate_after) as rt:
        warm = await asyncio.gather(*(rt.start(nap) for _ in range(20)))
        await asyncio.sleep(settle)
        gc.collect()
        before = len(gc.get_objects())
        runs = await asyncio.gather(*(rt.start(nap) for _ in range(500)))
        with anyio.fail_after(10):
            while rt.stats()["timers"] < 520:
                await asyncio.sleep(0.01)
        await asyncio.sleep(settle)
        del warm, runs
        gc.collect()
        return (len(gc.get_objects()) - before) / 500


async def test_a_sleeping_run_holds_few_objects_the_collector_scans() -> None:
    """Every full collection walks every tracked object, so a live run's count is counted
    here so it does not creep back (about 32 with the store's rows; 36 when an idle run's
    mailbox, core and program kept empty lists, 56 when each idle actor kept a task waiting
    on its mailbox); a passivated run keeps about 6."""
    live = await _tracked_per_sleeper(passivate_after=7200, settle=0.1)
    assert live < 34, f"{live:.1f} tracked objects per live sleeping run"
    passive = await _tracked_per_sleeper(passivate_after=0.05, settle=0.5)
    assert passive < 8, f"{passive:.1f} tracked objects per passivated sleeping run"
