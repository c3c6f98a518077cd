"""runtime.testing.VirtualClock: time moves only when moved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from runtime import sleep, workflow
from runtime.testing import TestRuntime, VirtualClock

pytestmark = pytest.mark.anyio

START = datetime(2026, 5, 1, tzinfo=UTC)


async def test_timers_fire_in_time_order_when_the_clock_reaches_them() -> None:
    clock = VirtualClock(START)
    fired: list[str] = []
    clock.call_at(START + timedelta(hours=2), lambda: fired.append("2h"))
    clock.call_at(START + timedelta(hours=1), lambda: fired.append("1h"))
    dropped = clock.call_at(START + timedelta(minutes=30), lambda: fired.append("30m"))
    dropped.cancel()
    assert clock.next_due() == START + timedelta(hours=1)  # the cancelled one is skipped
    assert clock.move_to(START + timedelta(minutes=90)) == 1
    assert fired == ["1h"] and clock.now() == START + timedelta(minutes=90)
    assert clock.move_to(START + timedelta(days=1)) == 1
    assert fired == ["1h", "2h"] and clock.next_due() is None
    with pytest.raises(ValueError, match="cannot go back"):
        clock.move_to(START)


async def test_a_timer_for_a_time_already_passed_fires_soon() -> None:
    clock = VirtualClock(START)
    fired: list[str] = []
    clock.call_at(START, lambda: fired.append("now"))
    clock.call_at(START - timedelta(days=1), lambda: fired.append("past")).cancel()
    assert fired == []
    await asyncio.sleep(0)
    assert fired == ["now"]


@workflow
async def no_wait() -> datetime:
    await sleep(0)
    return START


async def test_a_zero_sleep_needs_no_advance() -> None:
    async with TestRuntime(workflows=[no_wait], start=START) as rt:
        run = await rt.start(no_wait)
        await rt.wait_for_status(run.id, "completed")
        assert rt.now() == START
