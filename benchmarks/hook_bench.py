"""The ``hooks`` suite: how long a payload sent with ``resume_hook()`` takes to wake its run.

Each sample starts a ``hook_then_step`` run, waits until its hook exists (``get_hook``) and a
few milliseconds more so the workflow is parked on ``await hook``, then calls
``resume_hook(token, "go")`` and times, from that call:

* ``resume`` — to the first line of the body of the step the workflow calls after the hook;
* ``resume_workflow`` — to workflow code running again after ``await hook``;

and, in the detail column, when ``resume_hook()`` itself returned (``hook_received`` is
recorded by then). In-process on every store (``perf_counter``), and on PostgreSQL also
across processes (``*_xproc``): a client process (:mod:`benchmarks.hook_client`, a
``Runtime(role="client")``) calls ``resume_hook``, and the two processes' ``time.time()``
stamps (the same clock on one machine) are compared.

Its scenarios, by the name that selects one alone (:data:`SCENARIOS`): ``resume``, the
in-process rows, and ``resume_xproc``, the rows across processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import HookNotFoundError, Run, Runtime

from . import stats
from .config import Plan
from .hook_workflows import HOOK_WORKFLOWS, hook_then_step, take_stamps
from .model import Row, SuiteResult, WrongResultError
from .progress import say
from .rows import ms_row
from .stores import each_store, fresh_store_url

SUITE = "hooks"
SCENARIOS = ("resume", "resume_xproc")
"""In-process (``resume`` and ``resume_workflow`` rows) and across processes (PostgreSQL)."""
WARMUP = 3
SETTLE = 0.005
"""Seconds to wait after the hook exists, so the workflow is parked on ``await hook``."""
SCENARIO_TIMEOUT = 300.0
HOOK_WAIT = 10.0
TARGET_MS = 2.0
XPROC_TARGET_MS = 10.0
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class HookSamples:
    """Seconds from calling ``resume_hook()`` to each moment, one entry per sample."""

    to_step: list[float] = field(default_factory=list)
    to_workflow: list[float] = field(default_factory=list)
    call: list[float] = field(default_factory=list)


_runs = 0


def _key() -> str:
    global _runs
    _runs += 1
    return f"hook-{os.getpid()}-{_runs}"


async def until_hook(rt: Runtime, token: str) -> None:
    """Return once the hook ``token`` exists (``TimeoutError`` after ``HOOK_WAIT`` s)."""
    async with asyncio.timeout(HOOK_WAIT):
        while True:
            try:
                await rt.get_hook(token)
                return
            except HookNotFoundError:
                await asyncio.sleep(0.001)


async def _parked(rt: Runtime, key: str) -> tuple[str, Run]:
    """Start a run whose workflow is parked on its hook; its token and the run."""
    token = f"bench:{key}"
    run = await rt.start(hook_then_step, key, token)
    await until_hook(rt, token)
    await asyncio.sleep(SETTLE)
    return token, run


async def _finish(run: Run) -> None:
    result = await run.result(timeout=HOOK_WAIT)
    if result != "go":
        raise WrongResultError(f"run {run.id} returned {result!r}, not the payload 'go'")


async def measure_in_process(rt: Runtime, samples: int) -> HookSamples:
    """``resume_hook()`` from the runtime that hosts the run (``perf_counter``)."""
    out = HookSamples()
    for index in range(WARMUP + samples):
        key = _key()
        token, run = await _parked(rt, key)
        called = time.perf_counter()
        await rt.resume_hook(token, "go")
        returned = time.perf_counter()
        await _finish(run)
        resumed, entered = take_stamps(key)
        if index >= WARMUP:
            out.to_step.append(entered[0] - called)
            out.to_workflow.append(resumed[0] - called)
            out.call.append(returned - called)
    return out


@asynccontextmanager
async def hook_client(url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A :mod:`benchmarks.hook_client` process on ``url``, ready; ended afterwards."""
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.hook_client",
        url,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"the hook client did not start (said {line!r}; see stderr)")
        yield process
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _ask(process: asyncio.subprocess.Process, token: str) -> dict[str, Any]:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(token.encode() + b"\n")
    await process.stdin.drain()
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError("the hook client exited (see stderr)")
    reply: dict[str, Any] = json.loads(line)
    if "error" in reply:
        raise RuntimeError(f"the hook client's resume_hook failed: {reply['error']}")
    return reply


async def measure_cross_process(rt: Runtime, url: str, samples: int) -> HookSamples:
    """``resume_hook()`` from a client process (``time.time()`` in both processes)."""
    out = HookSamples()
    async with hook_client(url) as process:
        for index in range(WARMUP + samples):
            key = _key()
            token, run = await _parked(rt, key)
            reply = await _ask(process, token)
            await _finish(run)
            resumed, entered = take_stamps(key)
            called = float(reply["called"])
            if index >= WARMUP:
                out.to_step.append(entered[1] - called)
                out.to_workflow.append(resumed[1] - called)
                out.call.append(float(reply["returned"]) - called)
    return out


@asynccontextmanager
async def _scenario(
    kind: str, postgres: str | None, name: str
) -> AsyncIterator[tuple[str, Runtime]]:
    """A worker Runtime on a fresh store of ``kind`` (and its URL), for one scenario."""
    async with (
        fresh_store_url(kind, postgres) as url,
        Runtime(store=url, workflows=HOOK_WORKFLOWS) as rt,
    ):
        try:
            async with asyncio.timeout(SCENARIO_TIMEOUT):
                yield url, rt
        except TimeoutError:
            raise TimeoutError(f"{name} took over {SCENARIO_TIMEOUT:.0f} s (a hang?)") from None
    say(f"hooks {kind} {name}: done")


def summarize(kind: str, samples: HookSamples, across: bool) -> list[Row]:
    """The two rows of one store, in-process or across processes."""
    suffix = "_xproc" if across else ""
    where = "a client process's" if across else "the same runtime's"
    call = f"{where} resume_hook() returned after {stats.median(samples.call) * 1000:.2f} ms"
    return [
        ms_row(
            SUITE,
            kind,
            f"resume{suffix}",
            None,
            samples.to_step,
            XPROC_TARGET_MS if across else TARGET_MS,
            f"resume_hook() → body of the step after the hook; {call}",
        ),
        ms_row(
            SUITE,
            kind,
            f"resume_workflow{suffix}",
            None,
            samples.to_workflow,
            detail="resume_hook() → workflow code after `await hook`",
        ),
    ]


def chosen(only: Collection[str] | None) -> frozenset[str]:
    """The scenarios to run: ``only``, or both; ``ValueError`` on an unknown name."""
    unknown = sorted(set(only or ()) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown hooks scenario(s) {unknown}: use {', '.join(SCENARIOS)}")
    return frozenset(SCENARIOS if only is None else only)


async def run_hooks_suite(
    plan: Plan, stores: Sequence[str], postgres: str | None, only: Collection[str] | None = None
) -> SuiteResult:
    """Measure hook resume latency on each store kind (and across processes on PostgreSQL);
    with ``only``, just the scenarios it names."""
    wanted = chosen(only)
    out = SuiteResult(SUITE)
    out.notes.append(
        "Worker runtimes with the defaults (poll_interval 0.25 s on SQLite and PostgreSQL; "
        "across processes PostgreSQL wakes the worker with LISTEN/NOTIFY). *_xproc rows: the "
        "client is another process; latencies compare time.time() in the two processes."
    )

    async def measure(kind: str) -> None:
        if "resume" in wanted:
            async with _scenario(kind, postgres, "in-process") as (_, rt):
                samples = await measure_in_process(rt, plan.hook_samples)
            out.rows.extend(summarize(kind, samples, across=False))
        if kind == "postgres" and "resume_xproc" in wanted:
            async with _scenario(kind, postgres, "across processes") as (url, rt):
                samples = await measure_cross_process(rt, url, plan.hook_samples)
            out.rows.extend(summarize(kind, samples, across=True))

    async for _ in each_store("hooks", stores, postgres, out, measure):
        pass
    if "postgres" not in stores and "resume_xproc" in wanted:
        out.skipped.append("across processes: measured on PostgreSQL only")
    return out
