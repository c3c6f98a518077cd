"""The ``sleepers`` suite: what runs that sleep cost a SQLite worker, and how fast they return.

Scenarios, on a fresh SQLite file each:

* ``sleepers_start`` — n runs that each sleep an hour, started in rounds of
  ``START_ROUND`` at once: runs/s until every one is recorded and sleeping;
* ``sleepers_rss`` — the process's resident memory they added, per run (live, not
  passivated: ``passivate_after`` is longer than the measurement);
* ``sleepers_recovery`` — the worker closes and a new one opens the same file: seconds
  until every run's timer is armed again;
* ``sleeper_live_bytes`` / ``sleeper_passive_bytes`` — tracemalloc: the bytes one run
  retains while it sleeps live, and once it has passivated (m runs, fewer than n:
  tracemalloc slows a process down many times).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

from runtime import Runtime, sleep, workflow

from .config import Plan
from .model import Row, SuiteResult, Target
from .progress import say
from .sleepers_peer import measure_dbos
from .stores import sqlite_mode, sqlite_options, temp_dir

SUITE = "sleepers"
START_ROUND = 1000
SLEEP_SECONDS = 3600.0
LIVE_BYTES_TARGET = 8 * 1024
PASSIVE_BYTES_TARGET = 2 * 1024
START_RATE_TARGET = 3000.0
RECOVERY_TARGET_S = 10.0
SETTLE_TIMEOUT_S = 300.0
WARM = 50
"""Runs started first, unmeasured (imports, prepared statements, the WAL file)."""


@workflow(name="benchmarks.sleepers:napper")
async def napper(index: int) -> int:
    """Sleep an hour (the benchmark ends long before)."""
    await sleep(SLEEP_SECONDS)
    return index


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {SETTLE_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.02)


async def start_sleepers(rt: Runtime, n: int, already: int = 0) -> float:
    """Start ``n`` sleeping runs in rounds (``already`` sleep in ``rt``); seconds until all
    are recorded and their timers armed."""
    begin = time.perf_counter()
    for first in range(0, n, START_ROUND):
        last = min(n, first + START_ROUND)
        await asyncio.gather(*(rt.start(napper, i) for i in range(first, last)))
    await _until(lambda: rt.stats()["timers"] >= already + n, f"{n:,} runs sleeping")
    return time.perf_counter() - begin


def _url(directory: Path) -> str:
    return f"sqlite:///{directory / 'sleepers.db'}?{sqlite_options()}"


async def start_fleet(url: str, n: int) -> tuple[float, float]:
    """Start ``n`` sleepers on a fresh file: (start seconds, RSS bytes a run)."""
    async with Runtime(url, workflows=[napper], passivate_after=2 * SLEEP_SECONDS) as rt:
        await start_sleepers(rt, WARM)  # warm: imports, statements, WAL
        gc.collect()
        rss_before = _rss_bytes()
        started = await start_sleepers(rt, n, WARM)
        gc.collect()
        return started, (_rss_bytes() - rss_before) / n


async def recover_fleet(url: str, total: int) -> tuple[float, int]:
    """Open the file in a new runtime: (seconds until ``total`` timers are armed, or until
    ``SETTLE_TIMEOUT_S`` passed; how many were armed by then)."""
    begin = time.perf_counter()
    async with Runtime(url, workflows=[napper], passivate_after=2 * SLEEP_SECONDS) as rt:
        with contextlib.suppress(TimeoutError):
            await _until(lambda: rt.stats()["timers"] >= total, f"{total:,} runs recovered")
        return time.perf_counter() - begin, rt.stats()["timers"]


async def measure_retained(m: int, passivate_after: float) -> float:
    """tracemalloc: bytes a sleeping run retains (live, or passivated if ``passivate_after``
    is 0)."""
    async with temp_dir() as directory:
        url = _url(directory)
        async with Runtime(url, workflows=[napper], passivate_after=passivate_after) as rt:
            await start_sleepers(rt, WARM)
            if passivate_after <= 0:
                await _until(lambda: rt.stats()["live_runs"] == 0, "runs passivated")
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                await start_sleepers(rt, m, WARM)
                if passivate_after <= 0:
                    await _until(lambda: rt.stats()["live_runs"] == 0, "runs passivated")
                gc.collect()
                return (tracemalloc.get_traced_memory()[0] - base) / m
            finally:
                tracemalloc.stop()


def _row(scenario: str, size: int, unit: str, value: float, target: Target | None) -> Row:
    row = Row(
        suite=SUITE,
        store="sqlite",
        scenario=scenario,
        size=size,
        unit=unit,
        median=value,
        p95=None,
        samples=1,
    )
    row.target = target
    return row


async def _measured(out: SuiteResult, what: str, job: Callable[[], Awaitable[None]]) -> None:
    try:
        await job()
    except (TimeoutError, OSError) as error:
        out.errors.append(f"{what}: {error}")
        say(f"sleepers {what} failed: {error}")


async def run_sleepers_suite(plan: Plan, peer: str | None = None) -> SuiteResult:
    """Start, hold and recover sleeping runs on one SQLite worker; memory per run. With
    ``peer`` (``dbos``), DBOS beside them (:mod:`benchmarks.sleepers_peer`)."""
    out = SuiteResult(SUITE)
    n, m = plan.sleepers, plan.sleepers_traced
    out.notes.append(
        f"Each run sleeps {SLEEP_SECONDS:.0f} s; started {START_ROUND:,} at once per round; "
        f"SQLite with {sqlite_mode()}. RSS and start rate are measured without tracemalloc; "
        f"bytes per run with tracemalloc over {m:,} runs (it slows the process many times)."
    )

    async def fleet() -> None:
        async with temp_dir() as directory:
            url = _url(directory)
            started, rss = await start_fleet(url, n)
            say(f"sleepers: {n:,} started in {started:.1f} s; reopening")
            rate = n / started
            goal = Target(">=", START_RATE_TARGET, "median", f"≥ {START_RATE_TARGET:,.0f} runs/s")
            out.rows.append(_row("sleepers_start", n, "runs/s", rate, goal))
            out.rows[-1].rate = rate
            out.rows.append(_row("sleepers_rss", n, "KiB/run", rss / 1024, None))
            waited, armed = await recover_fleet(url, n + WARM)
        goal = Target("<=", RECOVERY_TARGET_S, "median", f"≤ {RECOVERY_TARGET_S:g} s")
        if armed >= n + WARM:
            out.rows.append(_row("sleepers_recovery", n, "s", waited, goal))
        else:  # not all within the wait: the time it would take at the rate it went
            row = _row("sleepers_recovery", n, "s", waited * (n + WARM) / max(armed, 1), goal)
            row.extra["detail"] = (
                f"extrapolated: {armed:,} of {n + WARM:,} timers armed after {waited:.0f} s"
            )
            out.rows.append(row)

    async def live() -> None:
        value = await measure_retained(m, 2 * SLEEP_SECONDS)
        goal = Target("<=", LIVE_BYTES_TARGET, "median", "≤ 8 KiB")
        out.rows.append(_row("sleeper_live_bytes", m, "bytes/run", value, goal))

    async def passive() -> None:
        value = await measure_retained(m, 0.0)
        goal = Target("<=", PASSIVE_BYTES_TARGET, "median", "≤ 2 KiB")
        out.rows.append(_row("sleeper_passive_bytes", m, "bytes/run", value, goal))

    await _measured(out, "fleet", fleet)
    await _measured(out, "live bytes", live)
    await _measured(out, "passive bytes", passive)
    if peer is not None:
        await measure_dbos(out, plan, n + WARM)
    return out
