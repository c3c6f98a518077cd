"""Timers: one clock callback for all of them, delivered earliest first, disarmed for good."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from actors.timers import Timers
from runtime.testing.clock import VirtualClock

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Rig:
    def __init__(self) -> None:
        self.clock = VirtualClock(T0)
        self.got: list[tuple[str, object]] = []
        self.timers = Timers(lambda run_id, message: self.got.append((run_id, message)), self.clock)

    async def move(self, seconds: float, expect: int) -> list[tuple[str, object]]:
        """Move the clock; the messages delivered (waiting for ``expect`` of them)."""
        self.got.clear()
        self.clock.move_to(at(seconds))
        with anyio.fail_after(5):
            while len(self.got) < expect:
                await anyio.sleep(0.001)
        await anyio.sleep(0.01)  # nothing more comes
        return list(self.got)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    async with anyio.create_task_group() as tg:
        tg.start_soon(made.timers.run)
        yield made
        made.timers.close()


async def test_timers_due_are_delivered_earliest_first(rig: Rig) -> None:
    t = rig.timers
    t.arm("r1", "a", at(3), "third")
    t.arm("r2", "a", at(1), "first")
    t.arm("r1", "b", at(2), "second")
    t.arm("r1", "b", at(0.5), "ignored")  # an armed key stays as it was
    assert len(t) == 3 and t.armed("r1", "b")
    assert await rig.move(2, 2) == [("r2", "first"), ("r1", "second")]
    assert len(t) == 1 and not t.armed("r1", "b")
    assert await rig.move(5, 1) == [("r1", "third")]
    assert len(t) == 0


async def test_a_disarmed_timer_never_fires_and_a_key_armed_again_fires_once(rig: Rig) -> None:
    t = rig.timers
    t.arm("r", "idle", at(1), "old")
    t.disarm("r", "idle")
    t.arm("r", "idle", at(2), "new")  # its old heap entry is stale, not delivered
    t.arm("s", "wait", at(1), "other")
    t.disarm_run("s")
    assert len(t) == 1
    assert await rig.move(3, 1) == [("r", "new")]


async def test_a_timer_armed_for_a_past_time_fires_at_once(rig: Rig) -> None:
    rig.clock.move_to(at(10))
    rig.timers.arm("r", "late", at(1), "now")
    with anyio.fail_after(5):
        while not rig.got:
            await anyio.sleep(0.001)
    assert rig.got == [("r", "now")]


async def test_armed_and_disarmed_many_times_the_heap_stays_small(rig: Rig) -> None:
    t = rig.timers
    for i in range(10_000):
        t.arm("r", "idle", at(100 + i), i)
        t.disarm("r", "idle")
    assert len(t) == 0 and len(t._heap) <= 64
    t.arm("r", "idle", at(1), "last")
    assert await rig.move(20_000, 1) == [("r", "last")]


async def test_a_closed_timers_delivers_nothing_more(rig: Rig) -> None:
    rig.timers.arm("r", "a", at(1), "x")
    rig.timers.close()
    rig.timers.arm("r", "b", at(1), "y")
    assert await rig.move(2, 0) == []
    assert len(rig.timers) == 0
