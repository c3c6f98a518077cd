"""Workflows and steps the runtime tests share (module level, so they are registered by name)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import datetime

import msgspec
import pydantic

from runtime import (
    FatalError,
    RetryableError,
    StepFailedError,
    now,
    random,
    sleep,
    step,
    step_metadata,
    uuid4,
    workflow,
    workflow_metadata,
)

calls: Counter[str] = Counter()


@step
async def add(a: int, b: int) -> int:
    calls["add"] += 1
    return a + b


@step
async def echo(value: object) -> object:
    return value


@workflow
async def sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total = await add(total, i)
    return total


@workflow
async def fan_out(n: int) -> list[int]:
    return list(await asyncio.gather(*[add(i, i) for i in range(n)]))


class Receipt(pydantic.BaseModel):
    order_id: str
    cents: int
    at: datetime


@dataclasses.dataclass
class Line:
    sku: str
    qty: int


class Box(msgspec.Struct):
    lines: list[Line]


@step
async def make_receipt(order_id: str, cents: int) -> Receipt:
    return Receipt(order_id=order_id, cents=cents, at=datetime(2026, 1, 1))


@step
async def pack(lines: list[Line]) -> Box:
    return Box(lines=lines)


@workflow
async def typed_flow(order_id: str, lines: list[Line]) -> dict[str, object]:
    receipt = await make_receipt(order_id, 500)
    box = await pack(lines)
    assert isinstance(receipt, Receipt) and isinstance(box, Box)
    assert all(isinstance(line, Line) for line in box.lines)
    return {"receipt": receipt.order_id, "qty": sum(line.qty for line in box.lines)}


attempts: Counter[str] = Counter()


@step(max_retries=3, retry_delay=0.01)
async def flaky(key: str, failures: int) -> str:
    attempts[key] += 1
    if attempts[key] <= failures:
        raise ValueError(f"attempt {attempts[key]} of {key} fails")
    return f"{key} ok after {attempts[key]}"


@step(max_retries=5)
async def retry_after_step(key: str) -> int:
    attempts[key] += 1
    if attempts[key] == 1:
        raise RetryableError("later", retry_after=0.05)
    return step_metadata().attempt


@step(max_retries=5)
async def fatal_step(key: str) -> None:
    attempts[key] += 1
    raise FatalError("no point retrying")


@step(max_retries=0)
async def once(key: str) -> None:
    attempts[key] += 1
    raise KeyError(key)


@step(max_retries=1, timeout=0.05, retry_delay=0.01)
async def slow(key: str) -> str:
    attempts[key] += 1
    await asyncio.sleep(10)
    return "never"


@workflow
async def retrying(key: str, failures: int) -> str:
    return await flaky(key, failures)


@workflow
async def catches(key: str) -> dict[str, object]:
    try:
        await fatal_step(key)
    except StepFailedError as error:
        return {
            "name": error.step_name,
            "type": error.error_type,
            "message": error.message,
            "attempts": error.attempts,
            "traceback": "FatalError" in (error.traceback or ""),
        }
    return {}


@workflow
async def fails_uncaught(key: str) -> None:
    await once(key)


@workflow
async def times_out(key: str) -> str:
    return await slow(key)


@workflow
async def retry_after_flow(key: str) -> int:
    return await retry_after_step(key)


@step
async def meta() -> dict[str, object]:
    m = step_metadata()
    w = workflow_metadata()
    return {"step": m.step_name, "attempt": m.attempt, "id": m.step_id, "run": w.run_id}


@workflow
async def deterministic() -> dict[str, object]:
    first = (now(), random(), str(uuid4()))
    await sleep(0.01)
    info = await meta()
    second = (now(), random(), str(uuid4()))
    return {
        "first": [first[0].isoformat(), first[1], first[2]],
        "second": [second[0].isoformat(), second[1], second[2]],
        "meta": info,
        "run": workflow_metadata().run_id,
    }


@workflow
async def sleeper(seconds: float) -> str:
    await sleep(seconds)
    return "awake"


@workflow
async def asyncio_features() -> dict[str, object]:
    results: dict[str, object] = {}
    done, pending = await asyncio.wait(
        [asyncio.ensure_future(add(1, 1)), asyncio.ensure_future(sleep(3600))],
        return_when=asyncio.FIRST_COMPLETED,
    )
    results["first"] = [t.result() for t in done]
    results["pending"] = len(pending)
    for task in pending:
        task.cancel()
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(add(2, 2))
        b = tg.create_task(add(3, 3))
    results["group"] = [a.result(), b.result()]
    try:
        async with asyncio.timeout(0.05):
            await sleep(3600)
    except TimeoutError:
        results["timeout"] = True
    await asyncio.sleep(0.01)
    results["wait_for"] = await asyncio.wait_for(add(4, 4), timeout=60)
    return results


@step
async def jitter(i: int) -> int:
    import random as real_random

    await asyncio.sleep(real_random.random() * 0.02)
    return i


@step
async def record(order: list[int]) -> int:
    return len(order)


@workflow
async def racing(n: int) -> list[int]:
    pending = {asyncio.ensure_future(jitter(i)) for i in range(n)}
    order: list[int] = []
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in sorted(done, key=lambda t: t.result()):
            order.append(task.result())
        await record(list(order))
    return order


@step
async def slow_forever(marker: str) -> None:
    import pathlib

    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        pathlib.Path(marker).write_text("cancelled")
        raise


@workflow
async def cancellable(marker: str) -> None:
    await slow_forever(marker)


@workflow
async def long_sleeper() -> str:
    await sleep("1h")
    return "awake"
