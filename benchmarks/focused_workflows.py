"""The workflows of the ``focused`` suite (module level, so they register by name).

Their steps stamp ``time.perf_counter()`` into :data:`benchmarks.workflows.STAMPS` under keys
unique per run: a body's entry and exit (``KEY:in``, ``KEY:out``) for the workflow overhead,
a branch's end for the fan-out, a body's entry for the recovery. :data:`CRASH` makes the step
at one index kill its own process: set only in the process started to crash (see
:mod:`benchmarks.focused_crash`), never in the harness, which therefore runs that step to
its end when it recovers the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from runtime import WorkflowFunction, step, workflow

from .workflows import STAMPS, one_step


@dataclass
class Crash:
    """The step index whose body kills this process (None: no step does)."""

    at: int | None = None


CRASH = Crash()


def entry_key(key: str) -> str:
    """Where the entries of ``key``'s step bodies are stamped."""
    return f"{key}:in"


def exit_key(key: str) -> str:
    """Where the exits of ``key``'s step bodies are stamped."""
    return f"{key}:out"


@step
async def timed(key: str, index: int) -> int:
    """A no-op step that stamps its body's first and last line."""
    STAMPS.setdefault(entry_key(key), []).append(time.perf_counter())
    STAMPS.setdefault(exit_key(key), []).append(time.perf_counter())
    return index


@step
async def branch(key: str, index: int) -> int:
    """A no-op branch of a fan-out that stamps its body's end."""
    STAMPS.setdefault(key, []).append(time.perf_counter())
    return index


@step
async def crash_point(key: str, index: int) -> int:
    """A no-op step that stamps its entry and, at :data:`CRASH`'s index, kills the process."""
    STAMPS.setdefault(key, []).append(time.perf_counter())
    if CRASH.at == index:
        os.kill(os.getpid(), signal.SIGKILL)
    return index


@workflow
async def timed_sequence(key: str, n: int) -> int:
    """``n`` timed steps one after another: for the workflow overhead."""
    for index in range(n):
        await timed(key, index)
    return n


@workflow
async def stamped_fan_out(key: str, n: int) -> int:
    """``n`` branches at once with ``asyncio.gather``: for the first and last branch."""
    results = await asyncio.gather(*[branch(key, index) for index in range(n)])
    return len(results)


@workflow
async def crash_sequence(key: str, n: int) -> int:
    """``n`` steps one after another, the one at :data:`CRASH`'s index killing its worker."""
    for index in range(n):
        await crash_point(key, index)
    return n


FOCUSED_WORKFLOWS: list[WorkflowFunction[Any, Any]] = [
    timed_sequence,
    stamped_fan_out,
    crash_sequence,
    one_step,
]
"""Every workflow the focused suite hosts."""
