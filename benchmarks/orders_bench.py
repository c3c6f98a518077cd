"""The ``orders`` suite: the CPU one order of a web shop costs the engine, per store.

Each order is a run of four steps (the first fails once and is retried), a durable sleep, a
hook its "customer" resumes once it exists, and a step that streams 20 chunks. ``n`` orders
run at once in one process; a client task per order starts it, resumes its hook and awaits
its result, as a web app's handlers would (without HTTP). Reported: CPU milliseconds per
order (``time.process_time``: every thread of the process, the store's too) and orders/s.

With a peer (``--peers dbos``), DBOS runs the same order as it documents its API
(:mod:`benchmarks.peers.dbos_orders`) on SQLite and PostgreSQL, in rounds that take turns with
actorflow's (each round on a fresh store, after its own warm-up), and its samples are
summarized by the same code; each figure is reported as ours, DBOS's and ours/DBOS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import partial

from persistence import HookNotFoundError
from runtime import RetryableError, Runtime, create_hook, get_writable, sleep, step, workflow
from runtime import step_metadata as metadata

from .config import PEER_STORE_KINDS, Plan
from .model import Row, SuiteResult
from .peers.orders_peer import run_dbos_orders
from .peers.suite import compare
from .peers.turns import Turns, peer_env, take_turns
from .peers.venv import PeerEnv
from .progress import say
from .rounds import shares
from .stores import each_store, fresh_store_url

SUITE = "orders"
CHUNKS = 20
STEPS = 4
WARMUP = 20
ROUNDS = 3
"""Rounds the repetitions are split into when DBOS runs beside (one round without it)."""
COMPARED = ("order_cpu", "order_rate")
Sample = tuple[float, float]
"""CPU seconds and wall seconds of one repetition of ``n`` orders."""
DBOS_MODE = (
    "async workflow of async steps (one with retries_allowed), DBOS.sleep_async, "
    "DBOS.recv_async / DBOS.send_async for the hook, DBOS.write_stream_async"
)
DBOS_NOTES = (
    "DBOS: the same order written as DBOS documents it: async steps (charge with "
    "@DBOS.step(retries_allowed=True, interval_seconds=0.001), failing its first attempt), "
    "DBOS.sleep_async(0.01), DBOS.recv_async for the approval, sent by the client task with "
    "DBOS.send_async right after DBOS.start_workflow_async (DBOS keeps a message sent before "
    "the workflow waits; actorflow's client retries resume_hook until the hook exists), and a "
    "step writing 20 chunks with DBOS.write_stream_async, then closing the stream. DBOS logs "
    "at ERROR (it logs each retry as a warning with its traceback); defaults otherwise.",
    "With DBOS, the repetitions are split into up to 3 rounds taking turns (actorflow first "
    "in odd rounds, DBOS in even ones), each on a fresh store or system database after its "
    "own warm-up; DBOS runs in its own process (its CPU is that process's), on a new SQLite "
    "file or a new PostgreSQL schema; ratio = actorflow/DBOS of the medians.",
)


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


def rows_of(kind: str, n: int, samples: Sequence[Sample], engine: str = "actorflow") -> list[Row]:
    """The suite's two rows (CPU ms per order, orders/s) of ``engine`` from its raw samples."""
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
        engine=engine,
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
        engine=engine,
    )
    rate.rate = rate.median
    return [per_run, rate]


async def measure_actorflow(kind: str, postgres: str | None, n: int, repeat: int) -> list[Sample]:
    """A warm-up, then ``repeat`` repetitions of ``n`` orders, on a fresh store of ``kind``."""
    async with (
        fresh_store_url(kind, postgres) as url,
        Runtime(url, workflows=[order_flow]) as rt,
    ):
        await measure_orders(rt, min(n, WARMUP), 0)
        samples = []
        for index in range(repeat):
            samples.append(await measure_orders(rt, n, (index + 1) * n))
            say(f"orders {kind}: {samples[-1][0] / n * 1000:.2f} CPU ms/order")
        return samples


async def measure_kind(
    kind: str, postgres: str | None, plan: Plan, env: PeerEnv | None
) -> Turns[list[Sample]]:
    """Every round on ``kind``: actorflow's, and DBOS's in turn if ``env`` is given."""
    n = plan.orders
    if env is None:
        ours = await measure_actorflow(kind, postgres, n, plan.orders_repeat)
        return Turns(ours=[ours])

    async def theirs(repeat: int) -> list[Sample]:
        return await run_dbos_orders(env, kind, postgres, n, repeat)

    rounds = shares(plan.orders_repeat, ROUNDS)
    return await take_turns(
        f"orders {kind}", rounds, partial(measure_actorflow, kind, postgres, n), theirs
    )


def add_kind(out: SuiteResult, kind: str, n: int, turns: Turns[list[Sample]], peer: bool) -> None:
    """``kind``'s rows into ``out``; with ``peer``, DBOS's and the comparisons, or why not."""
    ours = rows_of(kind, n, [s for part in turns.ours for s in part])
    out.rows.extend(ours)
    if not peer:
        return
    if kind not in PEER_STORE_KINDS:
        out.skipped.append(f"{kind}: DBOS has no {kind} store; actorflow only")
    elif not turns.peer_ran:
        out.skipped.append(f"{kind}: DBOS not run: {turns.failed or 'no round ran'}")
    else:
        theirs = rows_of(kind, n, [s for part in turns.theirs for s in part], engine="dbos")
        out.rows.extend(theirs)
        out.comparisons.extend(compare(ours, theirs, COMPARED))


async def run_orders_suite(
    plan: Plan, stores: Sequence[str], postgres: str | None, peer: str | None = None
) -> SuiteResult:
    """Run ``plan.orders`` orders at once, ``plan.orders_repeat`` times, on each store; with
    ``peer`` (``dbos``), DBOS too, in turns, on the stores it has."""
    out = SuiteResult(SUITE)
    n = plan.orders
    out.notes.append(
        f"{n:,} orders at once per repetition, each {STEPS} steps (the first retried once), a "
        f"sleep, a hook resumed by its client task and a {CHUNKS}-chunk stream; CPU is "
        "time.process_time of the whole process (store threads included); p95 is the worst "
        "repetition."
    )
    env = None
    if peer is not None:
        env = await peer_env(out, "orders", DBOS_MODE)
        if env is not None:
            out.notes.extend(DBOS_NOTES)

    async def measure(kind: str) -> Turns[list[Sample]]:
        return await measure_kind(kind, postgres, plan, env if kind in PEER_STORE_KINDS else None)

    async for kind, turns in each_store("orders", stores, postgres, out, measure):
        add_kind(out, kind, n, turns, env is not None)
    return out
