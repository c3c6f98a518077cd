"""How a ``Runtime`` starts and stops: entering, draining and tearing down.

Entering opens the store (one it was given, or one it makes from a URL and then owns), starts
the task group, the collaborators (:mod:`runtime.wiring`), the batcher and the timers, and (for
a worker) recovers every run that has not ended, then watches the log and keeps its leases.
Leaving drains: no new work is taken, running step bodies may finish within
``shutdown_grace`` seconds and their results are recorded, then the rest are cancelled; every
caller still waiting gets :class:`RuntimeClosedError`; a worker releases its leases, within 2 s,
even if the task leaving is cancelled (that ends the grace at once). Tearing down ends every
task of the runtime and closes the store it opened, on every exit path, a failed entry included.

A worker's id names its leases in the store, so two open workers of one process never share
one: each runtime's default id is its own, and an id given twice is refused at entry.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Coroutine, Set
from typing import TYPE_CHECKING

import anyio

from persistence import store_for

from .telemetry import Telemetry
from .watcher import LogWatcher
from .wiring import Parts

if TYPE_CHECKING:
    from .leases import Leases
    from .runtime import Runtime


_made = itertools.count(1)
_open_workers: dict[str, Runtime] = {}
"""The worker ids of this process's open worker runtimes."""


def default_worker_id() -> str:
    """``host:pid`` for the first runtime a process makes, ``host:pid:N`` for its N-th: two
    runtimes of a process renewing each other's leases would each give back, claim and run
    again the other's runs."""
    n = next(_made)
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if n == 1 else f"{base}:{n}"


def _take_worker_id(rt: Runtime) -> None:
    holder = _open_workers.get(rt.worker_id)
    if holder is not None and holder is not rt:
        raise ValueError(
            f"worker id {rt.worker_id!r} is used by another open runtime of this process: "
            "each worker needs its own (leave worker_id unset for one)"
        )
    _open_workers[rt.worker_id] = rt


async def enter(rt: Runtime) -> None:
    """Open the store, start the runtime's tasks and (a worker) recover the runs it may take."""
    if rt.role == "worker":
        _take_worker_id(rt)
    if isinstance(rt._store_arg, str) or rt._store_arg is None:
        rt._store = store_for(rt._store_arg)
        rt._owns_store = True
    else:
        rt._store = rt._store_arg
    await rt._store.open()
    tg = anyio.create_task_group()
    await tg.__aenter__()
    rt._tg = tg
    rt.telemetry = Telemetry(rt.tracer_provider, rt.meter_provider, rt.worker_id)
    rt._parts = parts = Parts(rt, tg)
    tg.start_soon(parts.batcher.run, name="actorflow batcher")
    tg.start_soon(parts.timers.run, name="actorflow timers")
    if rt.role == "worker":
        position = await rt._store.last_position()
        await rt._recover()
        watcher = LogWatcher(rt._store, parts.router, lambda: rt.poll_interval)
        tg.start_soon(watcher.run, position, name="actorflow watcher")
        if parts.leases is not None:
            tg.start_soon(parts.leases.keep, name="actorflow leases")
            tg.start_soon(parts.leases.sweep, name="actorflow claims")


async def drain(rt: Runtime, parts: Parts) -> None:
    """Stop taking work, let step bodies finish within the grace, record what they did."""
    rt._closing = True
    if parts.leases is not None:
        parts.leases.close()
    parts.timers.close()
    parts.router.drain()
    try:
        stuck = await parts.steps.stop(rt.shutdown_grace)
        with anyio.move_on_after(2.0):  # what is in hand is written (unless the store is down)
            await parts.system.wait_idle()
    except BaseException:  # cancelled: the grace ends now, the leases are still released
        with anyio.CancelScope(shield=True):
            stuck = await parts.steps.stop(0)
        await _let_go(rt, parts, stuck, patient=False)
        raise
    await _let_go(rt, parts, stuck, patient=True)


async def _let_go(rt: Runtime, parts: Parts, stuck: Set[str], patient: bool) -> None:
    """Stop the run actors, wake whoever waits on them, release the leases (a cancellation
    meanwhile waits for the release if ``patient``: see :func:`_see_through`)."""
    parts.system.stop_all()
    rt.store.notifier.notify_all()  # waiters on runs that were here: look again
    parts.replies.close()
    if parts.leases is not None:  # only once their step bodies have stopped
        await _see_through(_give_up(parts.leases, stuck), patient)


async def _give_up(leases: Leases, stuck: Set[str]) -> None:
    """Release every lease held (but those of runs whose bodies ignored their cancellation)
    and leave the store's list of workers, within 2 s (unless the store is down)."""
    with anyio.move_on_after(2.0):
        with anyio.move_on_after(1.0):  # the runs of a sweep, claim or release out, too
            await leases.settle()
        await leases.release(sorted(set(leases.owned) - stuck))
        await leases.leave()


async def _see_through(work: Coroutine[object, object, None], patient: bool) -> None:
    """Run ``work`` in a task of its own and wait for it. A cancellation of this task (a
    server cancelling the task that leaves the runtime, with ``Task.cancel()``, which no
    cancel scope's shield holds off) lets it finish if ``patient``, then is raised; a second
    one (or the first, if not ``patient``) ends it at once."""
    task = asyncio.get_running_loop().create_task(work)
    caught: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):  # a cancelled scope around the runtime waits, too
        while not task.done():
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError as error:
                if caught is not None or not patient:
                    task.cancel()
                    raise
                caught = error
    if caught is not None:
        raise caught


async def teardown(rt: Runtime) -> None:
    """End every task of the runtime and close the store it opened."""
    rt._closing = True
    if _open_workers.get(rt.worker_id) is rt:
        del _open_workers[rt.worker_id]
    tg, rt._tg = rt._tg, None
    try:
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
    finally:
        if rt._parts is not None:
            rt._parts.replies.close()
            if rt._parts.leases is not None:
                await rt._parts.leases.stop()
        if rt._owns_store and rt._store is not None:
            await rt._store.close()
        rt._store = None
