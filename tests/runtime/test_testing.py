"""runtime.testing.TestRuntime: the real runtime on a virtual clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from runtime import (
    RetryableError,
    create_hook,
    now,
    sleep,
    start_child,
    step,
    step_metadata,
    workflow,
)
from runtime.testing import NotIdleError, StuckError, TestRuntime

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, tzinfo=UTC)
woken: list[str] = []
released = asyncio.Event()


@step
async def note(label: str) -> str:
    woken.append(label)
    return label


@workflow
async def week_off(label: str) -> list[datetime]:
    seen = [now()]
    await sleep("7d")
    seen.append(now())
    await note(label)
    return seen


@workflow
async def hourly(times: int) -> list[datetime]:
    seen = []
    for _ in range(times):
        await asyncio.sleep(3600)  # durable, like sleep()
        seen.append(now())
    return seen


@workflow
async def nap(label: str, seconds: float) -> str:
    await sleep(seconds)
    return await note(label)


attempts: list[tuple[int, datetime]] = []


@step(max_retries=3)
async def flaky() -> int:
    meta = step_metadata()
    attempts.append((meta.attempt, meta.started_at))
    if meta.attempt < 3:
        raise RetryableError("not yet", retry_after=timedelta(hours=1))
    return meta.attempt


@workflow
async def retried() -> int:
    return await flaky()


@step
async def prepare(order_id: str) -> str:
    return order_id


@workflow
async def approval(order_id: str) -> str:
    await prepare(order_id)
    hook = create_hook(token=f"approve:{order_id}")
    try:
        async with asyncio.timeout(3600):
            decision = await hook
    except TimeoutError:
        return "expired"
    return f"approved by {decision['by']}"


@step
async def blocked() -> None:
    await released.wait()


@workflow
async def stuck() -> None:
    await blocked()


@step
async def stamp() -> datetime:
    return now()  # in a step: the runtime's clock


@workflow
async def stamped() -> list[datetime]:
    first = await stamp()
    await sleep("2h")
    return [first, await stamp()]


@workflow
async def child_nap(n: int) -> int:
    await sleep("1d")
    return n


@workflow
async def parent(n: int) -> int:
    return int(await start_child(child_nap, n).result())


@workflow
async def failing() -> None:
    raise ValueError("boom")


async def test_a_week_long_sleep_takes_no_real_time() -> None:
    began = time.monotonic()
    async with TestRuntime(workflows=[week_off], start=START) as rt:
        run = await rt.start(week_off, "w")
        assert await rt.wait_for_sleep(run.id) == START + timedelta(days=7)
        await rt.advance("6d")
        assert await run.status() == "running"
        assert rt.now() == START + timedelta(days=6)
        await rt.advance("1d")
        assert await rt.wait_for_status(run.id, "completed")
        assert await run.result(timeout=5) == [START, START + timedelta(days=7)]
        assert rt.now() == START + timedelta(days=7)
        waits = [e for e in await run.events() if e.event_type == "wait_completed"]
        assert waits[0].created_at == START + timedelta(days=7)  # the store's times follow
    assert time.monotonic() - began < 5


async def test_now_in_a_step_is_the_virtual_clock() -> None:
    async with TestRuntime(workflows=[stamped], start=START) as rt:
        run = await rt.start(stamped)
        await rt.advance("2h")
        assert await run.result(timeout=5) == [START, START + timedelta(hours=2)]


async def test_timers_armed_while_advancing_fire_in_time_order() -> None:
    woken.clear()
    async with TestRuntime(workflows=[hourly, nap], start=START) as rt:
        chained = await rt.start(hourly, 3)
        late = await rt.start(nap, "late", 7200.5)
        early = await rt.start(nap, "early", 60)
        await rt.advance("3h")
        hours = [START + timedelta(hours=h) for h in (1, 2, 3)]
        assert await chained.result(timeout=5) == hours
        assert await late.result(timeout=5) == "late"
        assert await early.result(timeout=5) == "early"
    assert woken == ["early", "late"]


async def test_retry_delays_wait_for_the_clock() -> None:
    attempts.clear()
    async with TestRuntime(workflows=[retried], start=START) as rt:
        run = await rt.start(retried)
        await rt.run_until_idle()
        assert [a for a, _ in attempts] == [1]
        with pytest.raises(StuckError, match="retry of step"):
            await rt.wait_for_status(run.id, "completed")
        await rt.advance("59m")
        assert len(attempts) == 1
        await rt.advance("2h")
        assert await run.result(timeout=5) == 3
    hours = [START + timedelta(hours=h) for h in range(3)]
    assert attempts == [(1, hours[0]), (2, hours[1]), (3, hours[2])]


async def test_wait_for_hook_then_resume() -> None:
    async with TestRuntime(workflows=[approval], start=START) as rt:
        run = await rt.start(approval, "o-1")
        hook = await rt.wait_for_hook("approve:o-1")
        assert hook.run_id == run.id
        await rt.resume_hook("approve:o-1", {"by": "carol"})
        info = await rt.wait_for_status(run.id, "completed")
        assert info.status == "completed"
        assert await run.result(timeout=5) == "approved by carol"


async def test_asyncio_timeout_in_workflow_code_follows_the_clock() -> None:
    async with TestRuntime(workflows=[approval], start=START) as rt:
        run = await rt.start(approval, "o-2")
        await rt.wait_for_hook("approve:o-2")
        await rt.advance(timedelta(minutes=59))
        assert await run.status() == "running"
        await rt.advance(START + timedelta(hours=2))  # to an instant
        assert await run.result(timeout=5) == "expired"


async def test_waiting_for_what_cannot_happen_says_what_runs_wait_for() -> None:
    async with TestRuntime(workflows=[week_off, approval], start=START) as rt:
        run = await rt.start(week_off, "w")
        await rt.start(approval, "o-3")
        with pytest.raises(StuckError) as caught:
            await rt.wait_for_status(run.id, "completed")
        message = str(caught.value)
        assert "sleep until 2026-01-08T00:00:00+00:00 (in 7d)" in message
        assert "hook 'approve:o-3'" in message
        with pytest.raises(StuckError, match="no live hook has the token 'nope'"):
            await rt.wait_for_hook("nope")


async def test_a_run_that_ends_otherwise_fails_the_wait_at_once() -> None:
    async with TestRuntime(workflows=[failing]) as rt:
        run = await rt.start(failing)
        with pytest.raises(StuckError, match=r"ended failed \(ValueError: boom\), not completed"):
            await rt.wait_for_status(run.id, "completed")
        with pytest.raises(StuckError, match="is not sleeping"):
            await rt.wait_for_sleep(run.id)


async def test_a_step_that_never_returns_times_out_with_its_name() -> None:
    released.clear()
    async with TestRuntime(workflows=[stuck]) as rt:
        run = await rt.start(stuck)
        with pytest.raises(NotIdleError, match=r"within 0.2 s .*step .*blocked of "):
            await rt.run_until_idle(timeout=0.2)
        with pytest.raises(NotIdleError):
            await rt.wait_for_status(run.id, "completed", timeout=0.1)
        released.set()
        await rt.wait_for_status(run.id, "completed")


async def test_child_runs_sleep_on_the_same_clock_and_are_cancelled_with_their_parent() -> None:
    async with TestRuntime(workflows=[parent, child_nap], start=START) as rt:
        done = await rt.start(parent, 1)
        await rt.advance("1d")
        assert await done.result(timeout=5) == 1
        cancelled = await rt.start(parent, 2)
        await rt.run_until_idle()
        children = [
            r for r in await rt.list_runs(workflow_name=child_nap.name) if r.status == "running"
        ]
        assert len(children) == 1
        await cancelled.cancel()
        await rt.wait_for_status(children[0].run_id, "cancelled")


async def test_the_clock_does_not_go_back() -> None:
    async with TestRuntime(start=START) as rt:
        with pytest.raises(ValueError, match="negative"):
            await rt.advance(-1)
        with pytest.raises(ValueError, match="negative"):
            await rt.advance(timedelta(seconds=-1))
        with pytest.raises(ValueError, match="back"):
            await rt.advance(START - timedelta(days=1))
        with pytest.raises(ValueError, match="cannot read duration"):
            await rt.advance("soon")
        await rt.advance(0)
        assert rt.now() == START


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        TestRuntime(idle_timeout=0)
    with pytest.raises(ValueError, match="time zone"):
        TestRuntime(start=datetime(2026, 1, 1))
