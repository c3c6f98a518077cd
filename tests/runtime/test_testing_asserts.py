"""runtime.testing's assertions on what a run did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conventions import Decision
from runtime import Run, annotate, create_hook, sleep, step, step_metadata, workflow
from runtime.testing import (
    TestRuntime,
    assert_annotations,
    assert_attempts,
    assert_hooks,
    assert_steps,
    assert_waits,
)

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 1, tzinfo=UTC)


@step(retry_delay=60)
async def charge(order_id: str) -> str:
    if step_metadata().attempt < 2:
        raise ConnectionError("card network down")
    annotate(Decision.outcome, "charged")
    return f"receipt-{order_id}"


@step
async def ship(order_id: str) -> None:
    annotate(Decision.confidence, 0.9)


@workflow
async def order(order_id: str) -> str:
    receipt = await charge(order_id)
    await sleep("1h")
    with create_hook(token=f"delivered:{order_id}") as delivered:
        await sleep(timedelta(minutes=5))
        await ship(order_id)
        await ship(order_id)
        await delivered
    return receipt


async def finished_order(rt: TestRuntime) -> Run:
    run = await rt.start(order, "o-1")
    await rt.advance("2h")
    await rt.resume_hook("delivered:o-1", "ok")
    await rt.wait_for_status(run.id, "completed")
    return run


async def test_assertions_pass_on_what_the_run_did() -> None:
    async with TestRuntime(workflows=[order], start=START) as rt:
        run = await finished_order(rt)
        await assert_steps(run, ["charge", "ship", "ship"])
        await assert_steps(run, [charge, ship, ship])
        await assert_steps(run, [charge.name, "ship", ship.name])
        await assert_attempts(run, "charge", 2)
        await assert_attempts(run, ship, [1, 1])
        await assert_waits(run, ["1h", 300])
        await assert_waits(run, [timedelta(hours=1), timedelta(minutes=5)])
        await assert_hooks(run, ["delivered:o-1"])
        await assert_annotations(run, {Decision.outcome: "charged", "decision.confidence": 0.9})
        await assert_annotations(run, {Decision.outcome: "charged"}, scope="step")


async def test_assertions_say_what_the_run_did_instead() -> None:
    async with TestRuntime(workflows=[order], start=START) as rt:
        run = await finished_order(rt)
        with pytest.raises(AssertionError, match=r"called steps \['charge', 'ship', 'ship'\]"):
            await assert_steps(run, ["charge", "ship"])
        with pytest.raises(AssertionError, match=r"took attempts \[2\], not \[1\]"):
            await assert_attempts(run, "charge", 1)
        with pytest.raises(AssertionError, match=r"2 time\(s\) .*give one count per call"):
            await assert_attempts(run, "ship", 1)
        with pytest.raises(AssertionError, match=r"slept \['3600s', '300s'\], expected \['1h'\]"):
            await assert_waits(run, ["1h"])
        with pytest.raises(AssertionError, match=r"created hooks \['delivered:o-1'\]"):
            await assert_hooks(run, ["other"])
        with pytest.raises(AssertionError, match=r"'decision\.outcome': '<missing>'"):
            await assert_annotations(run, {Decision.outcome: "x"}, scope="run")
        with pytest.raises(TypeError, match="name a step"):
            await assert_steps(run, [42])  # type: ignore[list-item]
