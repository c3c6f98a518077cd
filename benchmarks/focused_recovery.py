"""Recovery of a run whose worker was killed: the focused suite's last scenario, actorflow side.

A worker process (:mod:`benchmarks.focused_crash`) runs ``STEPS`` steps of a run and is
killed (SIGKILL) as the next step's body starts; then this process opens a new Runtime on the
same store and times, from opening it, the entry of that step's body (the only body that
runs again) and the run's result. A memory store lives in one process and cannot be
recovered across runtimes: SQLite and PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from runtime import Runtime

from .focused_workflows import FOCUSED_WORKFLOWS
from .model import WrongResultError
from .workflows import take_stamps

RECOVERABLE = ("sqlite", "postgres")
NOT_RECOVERABLE = (
    "recovery not run: a memory store lives in one process, so no new worker can open it"
)
CRASH_TIMEOUT = 300.0
"""Seconds the dying worker may take to reach its last step (1,000 steps take a few)."""
RESULT_TIMEOUT = 120.0
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def crash_env() -> dict[str, str]:
    """This process's environment, with the directory holding ``benchmarks`` on the path."""
    path = os.environ.get("PYTHONPATH")
    joined = f"{PACKAGE_ROOT}{os.pathsep}{path}" if path else str(PACKAGE_ROOT)
    return {**os.environ, "PYTHONPATH": joined}


async def crash_run(url: str, key: str, run_id: str, steps: int) -> None:
    """Run a worker that completes ``steps`` steps of run ``run_id`` and is killed; an error
    saying why if it is not killed within :data:`CRASH_TIMEOUT`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.focused_crash",
        url,
        key,
        run_id,
        str(steps),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=crash_env(),
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), CRASH_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise TimeoutError(f"the dying worker did not die within {CRASH_TIMEOUT:.0f} s") from None
    if process.returncode != -signal.SIGKILL:
        tail = " | ".join(err.decode(errors="replace").strip().splitlines()[-2:])
        raise RuntimeError(
            f"the dying worker exited with {process.returncode}, not SIGKILL: {tail}"
        )


async def measure_recovery(url: str, steps: int) -> tuple[float, float]:
    """Seconds from opening a new Runtime on ``url`` to the re-run step's entry, and to the
    result, for a run killed after ``steps`` completed steps."""
    key = f"recover-{uuid.uuid4().hex[:12]}"
    run_id = f"bench-{key}"
    await crash_run(url, key, run_id, steps)
    begin = time.perf_counter()
    async with Runtime(store=url, workflows=FOCUSED_WORKFLOWS) as rt:
        result = await rt.get_run(run_id).result(timeout=RESULT_TIMEOUT)
        end = time.perf_counter()
    stamps = take_stamps(key)
    if result != steps + 1 or len(stamps) != 1:
        raise WrongResultError(
            f"recovered run {run_id}: result {result!r} after {len(stamps)} step bodies ran "
            f"again; expected {steps + 1} after 1"
        )
    return stamps[0] - begin, end - begin
