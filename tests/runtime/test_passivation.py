"""When a run that only waits is unloaded (passivated) and how it comes back.

A run waiting only on a hook stays loaded for ``passivate_after`` seconds, in case the payload
comes soon. A run that only sleeps, and whose sleep ends later than that, is unloaded as soon
as its wait is stored: it would be unloaded before it wakes anyway.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from runtime import create_hook, sleep, step, workflow
from runtime.testing import TestRuntime

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, tzinfo=UTC)
HORIZON = 60.0
bodies: list[str] = []


@step
async def after_nap(label: str) -> str:
    bodies.append(label)
    return label


@workflow(name="tests.passivation:nap")
async def nap(label: str, seconds: float) -> str:
    await sleep(seconds)
    return await after_nap(label)


@workflow(name="tests.passivation:approval")
async def approval(token: str) -> str:
    return str(await create_hook(token=token))


@workflow(name="tests.passivation:approval_or_timeout")
async def approval_or_timeout(token: str) -> str:
    hook = asyncio.ensure_future(_payload(token))
    nap_over = asyncio.ensure_future(sleep(3600))
    done, pending = await asyncio.wait([hook, nap_over], return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return "approved" if hook in done else "timed out"


async def _payload(token: str) -> str:
    return str(await create_hook(token=token))


def runtime() -> TestRuntime:
    return TestRuntime(
        workflows=[nap, approval, approval_or_timeout], start=START, passivate_after=HORIZON
    )


async def test_a_run_asleep_past_the_horizon_is_unloaded_at_once_and_wakes_on_time() -> None:
    bodies.clear()
    async with runtime() as rt:
        run = await rt.start(nap, "long", 3600)
        await rt.wait_for_sleep(run.id)
        await rt.run_until_idle()
        assert rt.stats()["live_runs"] == 0
        assert rt.stats()["timers"] == 1  # its wake-up stays armed
        await rt.advance("59m")
        assert bodies == []
        await rt.advance("1m")
        assert await run.result(timeout=5) == "long"
    assert bodies == ["long"]


async def test_a_run_asleep_within_the_horizon_stays_loaded() -> None:
    bodies.clear()
    async with runtime() as rt:
        run = await rt.start(nap, "short", HORIZON - 30)
        await rt.wait_for_sleep(run.id)
        await rt.run_until_idle()
        assert rt.stats()["live_runs"] == 1
        await rt.advance(HORIZON - 30)
        assert await run.result(timeout=5) == "short"
    assert bodies == ["short"]


async def test_a_run_waiting_on_a_hook_stays_loaded_until_the_horizon() -> None:
    async with runtime() as rt:
        run = await rt.start(approval, "tok-1")
        await rt.wait_for_hook("tok-1")
        await rt.run_until_idle()
        assert rt.stats()["live_runs"] == 1
        await rt.advance(HORIZON - 1)
        assert rt.stats()["live_runs"] == 1
        await rt.advance(2)
        assert rt.stats()["live_runs"] == 0
        await rt.resume_hook("tok-1", "yes")
        assert await run.result(timeout=5) == "yes"


async def test_a_hook_beside_a_long_sleep_keeps_the_run_loaded_until_the_horizon() -> None:
    async with runtime() as rt:
        run = await rt.start(approval_or_timeout, "tok-2")
        await rt.wait_for_hook("tok-2")
        await rt.run_until_idle()
        assert rt.stats()["live_runs"] == 1
        await rt.advance(HORIZON + 1)
        assert rt.stats()["live_runs"] == 0
        await rt.resume_hook("tok-2", "yes")
        assert await run.result(timeout=5) == "approved"
