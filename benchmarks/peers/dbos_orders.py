"""The orders suite's shop order on DBOS Transact, run by the interpreter of
``benchmarks/.peers/dbos``.

Not imported by the harness (DBOS is not a dependency of actorflow): the orders suite runs this
file as a subprocess once per round and store and reads the JSON it writes to ``--out``. It
mirrors ``benchmarks/orders_bench.py`` as DBOS documents its API: an async workflow of async
steps, the first with automatic retries (``@DBOS.step(retries_allowed=True)``; it fails its
first attempt), a durable ``DBOS.sleep_async``, ``DBOS.recv_async`` for the customer's approval
(sent by the client with ``DBOS.send_async``, DBOS's hook) and a step that writes 20 chunks with
``DBOS.write_stream_async`` and closes the stream.

``--orders`` orders run at once in this process, a client task per order starting it
(``DBOS.start_workflow_async``), sending the approval and awaiting the result, after a warm-up
of up to 20 orders; ``--repeat`` times. Raw samples per repetition: CPU seconds
(``time.process_time``, every thread of the process, DBOS's too) and wall seconds. On a fresh
system database: a new SQLite file in ``--dir`` or a new PostgreSQL schema. A failure is
written under ``not_run`` with why. Without DBOS installed the script exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

try:
    from .dbos_common import (
        MISSING_EXIT,
        DbosMissing,
        Target,
        add_store_arguments,
        check_store_arguments,
        launched,
        load_dbos,
        write_result,
    )
except ImportError:  # run as a script: the sibling module is first on sys.path
    from dbos_common import (  # type: ignore[import-not-found,no-redef]
        MISSING_EXIT,
        DbosMissing,
        Target,
        add_store_arguments,
        check_store_arguments,
        launched,
        load_dbos,
        write_result,
    )

CHUNKS = 20
TOPIC = "approve"
SLEEP_S = 0.01
RETRY_S = 0.001
"""The retry's wait, as actorflow's ``RetryableError(retry_after=0.001)``."""
RECV_TIMEOUT_S = 60.0
WARMUP = 20
LOG_LEVEL = "ERROR"
"""DBOS logs each automatic retry as a warning with its traceback; actorflow logs none, so
both are measured without formatting logs."""
MODE = (
    "async workflow of async steps (one @DBOS.step(retries_allowed=True)), DBOS.sleep_async, "
    "DBOS.recv_async / DBOS.send_async, DBOS.write_stream_async; DBOS.start_workflow_async"
)
Flow = Callable[[int], Awaitable[str]]


def register(dbos: Any) -> Flow:
    """Register the order workflow and its steps with ``dbos.DBOS``; the workflow."""
    DBOS = dbos.DBOS

    async def _charge(order: int) -> str:
        status = DBOS.step_status
        if status is not None and status.current_attempt == 0:
            raise RuntimeError("the card network is slow")
        return f"receipt-{order}"

    charge = DBOS.step(
        name="orders_charge", retries_allowed=True, interval_seconds=RETRY_S, max_attempts=3
    )(_charge)

    async def _reserve(order: int) -> int:
        return order % 7

    reserve = DBOS.step(name="orders_reserve")(_reserve)

    async def _ship(order: int) -> str:
        for index in range(CHUNKS):
            await DBOS.write_stream_async("tracking", f"{order}:{index}")
        await DBOS.close_stream_async("tracking")
        return f"parcel-{order}"

    ship = DBOS.step(name="orders_ship")(_ship)

    async def _notify(order: int, parcel: str) -> bool:
        return bool(parcel)

    notify = DBOS.step(name="orders_notify")(_notify)

    async def _order(order: int) -> str:
        await charge(order)
        await reserve(order)
        await DBOS.sleep_async(SLEEP_S)
        approved = await DBOS.recv_async(TOPIC, timeout_seconds=RECV_TIMEOUT_S)
        if approved != "yes":
            return "refused"
        parcel: str = await ship(order)
        await notify(order, parcel)
        return parcel

    flow: Flow = DBOS.workflow(name="orders_order")(_order)
    return flow


async def customer(DBOS: Any, flow: Flow, order: int) -> None:
    """Start an order, send its approval, await its result."""
    handle = await DBOS.start_workflow_async(flow, order)
    await DBOS.send_async(handle.get_workflow_id(), "yes", TOPIC, idempotency_key=str(order))
    result = await handle.get_result()
    if result != f"parcel-{order}":
        raise RuntimeError(f"order {order} returned {result!r}, not parcel-{order}")


async def measure_orders(DBOS: Any, flow: Flow, n: int, first: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``n`` orders run at once."""
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(customer(DBOS, flow, first + i) for i in range(n)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def measure(dbos: Any, target: Target, n: int, repeat: int) -> list[list[float]]:
    """A warm-up, then ``repeat`` repetitions of ``n`` orders on a fresh system database."""
    flow = register(dbos)
    samples: list[list[float]] = []
    async with launched(dbos, target.config()):
        await measure_orders(dbos.DBOS, flow, min(n, WARMUP), 0)
        for index in range(repeat):
            cpu, wall = await measure_orders(dbos.DBOS, flow, n, (index + 1) * n)
            samples.append([cpu, wall])
            print(
                f"[bench] dbos orders {target.store}: {cpu / n * 1000:.2f} CPU ms/order",
                file=sys.stderr,
                flush=True,
            )
    return samples


def parser() -> argparse.ArgumentParser:
    """The arguments: the store's flags, ``--orders`` and ``--repeat``."""
    p = argparse.ArgumentParser(
        prog="dbos_orders.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add_store_arguments(p, "bench_dbos_orders")
    p.add_argument("--orders", type=int, required=True, help="orders run at once")
    p.add_argument("--repeat", type=int, required=True, help="repetitions measured")
    return p


def main(argv: list[str] | None = None) -> int:
    """Measure the orders and write the JSON; 2 if DBOS is missing or on bad usage."""
    p = parser()
    args = p.parse_args(argv)
    check_store_arguments(p, args)
    if args.orders < 1 or args.repeat < 1:
        p.error("--orders and --repeat must be at least 1")
    try:
        dbos = load_dbos()
    except DbosMissing as exc:
        print(f"dbos_orders: {exc}", file=sys.stderr)
        return MISSING_EXIT
    target = Target.of("orders", args, LOG_LEVEL)
    raw: dict[str, Any] = {"orders": args.orders}
    not_run: dict[str, str] = {}
    try:
        raw["samples"] = asyncio.run(measure(dbos, target, args.orders, args.repeat))
    except Exception as exc:  # said in the JSON: the harness reports DBOS as not run
        not_run["orders"] = f"{type(exc).__name__}: {exc}"
    write_result(args.out, MODE, raw, not_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
