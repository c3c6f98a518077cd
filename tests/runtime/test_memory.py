"""What a runtime keeps: nothing of a run once it has ended, however it ended.

Measured with tracemalloc over 20,000 one-step runs and 20,000 runs that passivate and end,
on a memory store that forgets ended runs (so only the runtime's own memory is counted): the
runtime retains within 2 MB of what it held after the first 1,000 of each.
"""

from __future__ import annotations

import bisect
import gc
import tracemalloc
from collections.abc import Sequence

import anyio
import pytest

from persistence import MemoryStore
from persistence.batch import Request
from persistence.records import BatchResult, CommittedEvent
from runtime import Runtime, sleep, step, workflow

pytestmark = pytest.mark.anyio


class ForgetfulStore(MemoryStore):
    """A memory store that drops a run once it has ended, and keeps no global log."""

    def __init__(self) -> None:
        super().__init__()
        self._position = 0

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        result = await super().create_batch(requests)
        self._position += len(self._log)
        self._log.clear()
        for run_id in {r.run_id for r in requests}:
            state = self._states.get(run_id)
            if state is not None and state.run is not None and state.run.status.terminal:
                self._forget(run_id)
        return result

    def _forget(self, run_id: str) -> None:
        self._states.pop(run_id, None)
        self._events.pop(run_id, None)
        self._annotations.pop(run_id, None)
        self._leases.pop(run_id, None)
        index = bisect.bisect_left(self._order, run_id)
        if index < len(self._order) and self._order[index] == run_id:
            del self._order[index]
        for key in [k for k in self._waiting if k[0] == run_id]:
            del self._waiting[key]
        for token in [t for t, o in self._tokens.items() if o.run_id == run_id]:
            del self._tokens[token]

    async def read_committed(
        self, after: int, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[CommittedEvent]:
        return []

    async def last_position(self) -> int:
        return self._position


ran = [0]


@step
async def noop(i: int) -> int:
    ran[0] += 1
    return i


@workflow
async def one_step(i: int) -> int:
    return await noop(i)


@workflow
async def naps_then_steps(i: int) -> int:
    await sleep(0.02)  # passivated at once (passivate_after=0), woken by its timer
    return await noop(i)


async def run_many(rt: Runtime, count: int) -> None:
    """Run ``count`` of each kind, 1,000 of each at a time, until they have all ended (the
    store forgets ended runs, so the runtime's own counts tell)."""
    for start in range(0, count, 1000):
        goal = ran[0] + 2000
        for i in range(start, start + 1000):
            await rt.start(one_step, i)
            await rt.start(naps_then_steps, i)
        with anyio.fail_after(120):
            while ran[0] < goal or rt.stats()["live_runs"] or rt.stats()["timers"]:
                await anyio.sleep(0.01)


def retained() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.slow
@pytest.mark.timeout(600)  # tracemalloc makes every allocation several times slower
async def test_the_runtime_retains_nothing_of_ended_runs() -> None:
    store = ForgetfulStore()
    tracemalloc.start()
    try:
        async with Runtime(store, workflows=[one_step, naps_then_steps], passivate_after=0) as rt:
            await run_many(rt, 1000)
            await anyio.sleep(0.1)
            first = retained()
            await run_many(rt, 19_000)
            await anyio.sleep(0.1)
            last = retained()
            stats = rt.stats()
    finally:
        tracemalloc.stop()
    assert stats["live_runs"] == 0 and stats["timers"] == 0 and stats["hooks"] == 0
    assert stats["known"] == 0 and stats["pending"] == 0
    assert len(store._states) == 0
    grown = last - first
    assert grown < 2 * 1024 * 1024, f"the runtime kept {grown / 1024:.0f} KiB more"
