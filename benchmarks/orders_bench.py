"""The ``orders`` suite: the CPU one order of a web shop costs the engine, per store.

Each order is a run of four steps (the first fails once and is retried), a durable sleep, a
hook its "customer" resumes once it exists, and a step that streams 20 chunks. ``n`` orders
run at once in one process; a client task per order starts it, resumes its hook and awaits
its result, as a web app's handlers would (without HTTP). Reported: CPU milliseconds per
order (``time.process_time``: every thread of the process, the store's too) and orders/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from persistence import HookNotFoundError
from runtime import RetryableError, Runtime, create_hook, get_writable, sleep, step, workflow
from runtime import step_metadata as metadata

from .config import Plan
from .model import Row, SuiteResult
from .progress import say
from .stores import each_store, fresh_store_url

SUITE = "orders"
CHUNKS = 20
STEPS = 4


@step(name="benchmarks.orders:charge")
async def charge(order: int) -> str:
    """Fails its first attempt (a retry), then returns a receipt."""
    if metadata().attempt == 1:
        raise RetryableError("the card network is slow", retry_after=0.001)
    return f"receipt-{order}"


@step(name="benchmarks.orders:reserve")
async def reserve(order: int) -> int:
    """Reserve stock."""
    return order % 7


@step(name="benchmarks.orders:ship")
async def ship(order: int) -> str:
    """Stream the parcel's tracking, 20 chunks."""
    async with get_writable("tracking") as out:
        for index in range(CHUNKS):
            await out.write(f"{order}:{index}")
    return f"parcel-{order}"


@step(name="benchmarks.orders:notify")
async def notify(order: int, parcel: str) -> bool:
    """Tell the customer."""
    return bool(parcel)


@workflow(name="benchmarks.orders:order")
async def order_flow(order: int) -> str:
    """Charge, reserve, wait a moment, wait for approval, ship and notify."""
    await charge(order)
    await reserve(order)
    await sleep(0.01)
    approved = await create_hook(token=f"approve:{order}")
    if approved != "yes":
        return "refused"
    parcel = await ship(order)
    await notify(order, parcel)
    return parcel


async def _customer(rt: Runtime, order: int) -> None:
    """Start an order, approve it once it waits for approval, await its result."""
    run = await rt.start(order_flow, order)
    while True:
        try:
            await rt.resume_hook(f"approve:{order}", "yes", idempotency_key=str(order))
            break
        except HookNotFoundError:  # not waiting for approval yet
            await asyncio.sleep(0.005)
    if await run.result() != f"parcel-{order}":
        raise RuntimeError(f"order {order} did not ship")


async def measure_orders(rt: Runtime, n: int, first: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``n`` orders run at once."""
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(_customer(rt, first + i) for i in range(n)))
    return time.process_time() - cpu, time.perf_counter() - wall


def _rows(kind: str, n: int, samples: Sequence[tuple[float, float]]) -> list[Row]:
    cpu = sorted(c / n * 1000 for c, _ in samples)
    rates = sorted(n / w for _, w in samples)
    mid = len(samples) // 2
    per_run = Row(
        suite=SUITE,
        store=kind,
        scenario="order_cpu",
        size=n,
        unit="CPU ms/order",
        median=cpu[mid],
        p95=cpu[-1],
        samples=len(samples),
    )
    per_run.extra["detail"] = f"{STEPS} steps (1 retry), a sleep, a hook, {CHUNKS} chunks"
    rate = Row(
        suite=SUITE,
        store=kind,
        scenario="order_rate",
        size=n,
        unit="orders/s",
        median=rates[mid],
        p95=rates[0],
        samples=len(samples),
    )
    rate.rate = rate.median
    return [per_run, rate]


async def run_orders_suite(plan: Plan, stores: Sequence[str], postgres: str | None) -> SuiteResult:
    """Run ``plan.orders`` orders at once, ``plan.orders_repeat`` times, on each store."""
    out = SuiteResult(SUITE)
    n = plan.orders
    out.notes.append(
        f"{n:,} orders at once per repetition, each {STEPS} steps (the first retried once), a "
        f"sleep, a hook resumed by its client task and a {CHUNKS}-chunk stream; CPU is "
        "time.process_time of the whole process (store threads included); p95 is the worst "
        "repetition."
    )

    async def measure(kind: str) -> list[tuple[float, float]]:
        async with (
            fresh_store_url(kind, postgres) as url,
            Runtime(url, workflows=[order_flow]) as rt,
        ):
            await measure_orders(rt, min(n, 20), 0)  # warm up
            samples = []
            for index in range(plan.orders_repeat):
                samples.append(await measure_orders(rt, n, (index + 1) * n))
                say(f"orders {kind}: {samples[-1][0] / n * 1000:.2f} CPU ms/order")
            return samples

    async for kind, samples in each_store("orders", stores, postgres, out, measure):
        out.rows.extend(_rows(kind, n, samples))
    return out
