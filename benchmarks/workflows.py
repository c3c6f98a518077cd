"""The workflows and steps the runtime benchmark runs (module level, so they register by name).

Steps that matter for timing call :func:`mark` first thing: it appends
``time.perf_counter()`` to ``STAMPS[key]``, so the harness can read when each step body was
entered. Keys are unique per run, so concurrent runs never share a list.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from runtime import WorkflowFunction, step, workflow

STAMPS: dict[str, list[float]] = {}
"""Entry times (``perf_counter``) of the step bodies of each run, by the run's key."""


def take_stamps(key: str) -> list[float]:
    """The entry times recorded under ``key``, forgetting them."""
    return STAMPS.pop(key, [])


@step
async def mark(key: str, index: int) -> int:
    """A no-op step whose first line records when its body was entered."""
    STAMPS.setdefault(key, []).append(time.perf_counter())
    return index


@step
async def noop(index: int) -> int:
    """A no-op step."""
    return index


@workflow
async def first_step(key: str) -> int:
    """One marked step: for time to first step."""
    return await mark(key, 0)


@workflow
async def sequential(key: str, n: int) -> int:
    """``n`` marked steps one after another: for step-to-step overhead."""
    for index in range(n):
        await mark(key, index)
    return n


@workflow
async def sequential_big(key: str, n: int, blob: bytes) -> int:
    """``sequential`` with a large input it ignores: what a run's input costs each step."""
    del blob
    for index in range(n):
        await mark(key, index)
    return n


@workflow
async def fan_out(n: int) -> int:
    """``n`` no-op steps at once with ``asyncio.gather``."""
    results = await asyncio.gather(*[noop(index) for index in range(n)])
    return len(results)


@workflow
async def one_step(index: int) -> int:
    """A run of one no-op step: for runs per second."""
    return await noop(index)


WORKFLOWS: list[WorkflowFunction[Any, Any]] = [
    first_step,
    sequential,
    sequential_big,
    fan_out,
    one_step,
]
"""Every workflow the runtime benchmark hosts."""
