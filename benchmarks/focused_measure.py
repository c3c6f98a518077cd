"""One round of the focused suite on actorflow: workflow overhead, fan-out, runs/s, recovery.

Each round gets a fresh store with its own Runtime (a SQLite one first runs
``WAL_WARMUP_STEPS`` steps, as in the runtime suite, so it is measured in steady state);
every scenario and size first runs once unmeasured. The recovery gets a fresh store of its
own (see :mod:`benchmarks.focused_recovery`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from runtime import Runtime

from .focused_raw import FocusedRaw, FocusedScenarios
from .focused_recovery import RECOVERABLE, measure_recovery
from .focused_stats import first_last, workflow_overhead
from .focused_workflows import (
    FOCUSED_WORKFLOWS,
    entry_key,
    exit_key,
    stamped_fan_out,
    timed_sequence,
)
from .model import WrongResultError
from .runtime_bench import WAL_WARMUP_STEPS, measure_one_step_runs
from .stores import fresh_store_url
from .workflows import sequential, take_stamps

FANOUT_WARMUP_MAX = 100
"""The warm-up run of a fan-out has at most this many branches."""


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def measure_wo(rt: Runtime, n: int, repeat: int) -> list[float]:
    """Seconds outside the step bodies of each of ``repeat`` runs of ``n`` timed steps."""
    warm = _key("wo-warm")
    await (await rt.start(timed_sequence, warm, min(n, 10))).result()
    take_stamps(entry_key(warm))
    take_stamps(exit_key(warm))
    out: list[float] = []
    for _ in range(repeat):
        key = _key("wo")
        start = time.perf_counter()
        result = await (await rt.start(timed_sequence, key, n)).result()
        end = time.perf_counter()
        entries, exits = take_stamps(entry_key(key)), take_stamps(exit_key(key))
        if result != n or len(entries) != n:
            raise WrongResultError(f"timed_sequence({n}): {result!r}, {len(entries)} bodies")
        out.append(workflow_overhead(start, end, entries, exits))
    return out


async def measure_fanout(rt: Runtime, width: int, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds from ``start()`` to the first and to the last of ``width`` branches ending."""
    warm = _key("fan-warm")
    await (await rt.start(stamped_fan_out, warm, min(width, FANOUT_WARMUP_MAX))).result()
    take_stamps(warm)
    firsts: list[float] = []
    lasts: list[float] = []
    for _ in range(repeat):
        key = _key("fan")
        start = time.perf_counter()
        result = await (await rt.start(stamped_fan_out, key, width)).result()
        ends = take_stamps(key)
        if result != width or len(ends) != width:
            raise WrongResultError(f"stamped_fan_out({width}): {result!r}, {len(ends)} ends")
        first, last = first_last(start, ends)
        firsts.append(first)
        lasts.append(last)
    return firsts, lasts


@asynccontextmanager
async def round_runtime(kind: str, postgres: str | None) -> AsyncIterator[Runtime]:
    """A Runtime on a fresh store of ``kind`` (a SQLite one warmed up)."""
    async with (
        fresh_store_url(kind, postgres) as url,
        Runtime(store=url, workflows=[*FOCUSED_WORKFLOWS, sequential]) as rt,
    ):
        if kind == "sqlite":
            warm = _key("wal-warm")
            await (await rt.start(sequential, warm, WAL_WARMUP_STEPS)).result()
            take_stamps(warm)
        yield rt


async def measure_round(kind: str, postgres: str | None, scenarios: FocusedScenarios) -> FocusedRaw:
    """One round of every focused scenario on ``kind`` (recovery only where it can run)."""
    raw = FocusedRaw()
    async with round_runtime(kind, postgres) as rt:
        for n in scenarios.wo_steps:
            raw.wo[n] = await measure_wo(rt, n, scenarios.repeat)
        for width in scenarios.fanout_widths:
            first, last = await measure_fanout(rt, width, scenarios.repeat)
            raw.fanout_first[width], raw.fanout_last[width] = first, last
        for concurrency in scenarios.concurrency:
            raw.runs[concurrency] = await measure_one_step_runs(rt, concurrency, scenarios.repeat)
    if scenarios.recovery_steps and kind in RECOVERABLE:
        async with fresh_store_url(kind, postgres) as url:
            entry, result = await measure_recovery(url, scenarios.recovery_steps)
        raw.recovery_steps = scenarios.recovery_steps
        raw.recovery_entry, raw.recovery_result = [entry], [result]
    return raw
