"""One round of the focused scenarios on DBOS Transact, run by the interpreter of
``benchmarks/.peers/dbos``.

Not imported by the harness (DBOS is not a dependency of actorflow): the focused suite runs
this file as a subprocess once per round and reads the JSON it writes to ``--out``. It mirrors
``benchmarks/focused_measure.py`` (same workflows, warm-ups and raw samples, in seconds) with
DBOS's async workflows and async steps, on a fresh system database per round: a new SQLite
file in ``--dir``, or a new PostgreSQL schema (``--schema-prefix`` + a number; the harness
drops them afterwards).

Recovery: this script starts itself again with ``--crash-child``, which launches DBOS on a
fresh system database, starts a workflow of ``STEPS + 1`` steps and is killed (SIGKILL) as the
body of the step at index ``STEPS`` starts. This process then launches DBOS on that database,
which recovers pending workflows on launch, and times from creating and launching DBOS to
that step's body entering again, and to the workflow's result (read with a handle polling
every ``RESULT_POLL`` seconds, the only way DBOS gives a recovered workflow's result).

Without DBOS installed the script exits with status 2 and says so. DBOS is reached through
values typed as ``Any``, so this file type-checks without it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from .dbos_common import MISSING_EXIT, DbosMissing, Target, launched, load_dbos
except ImportError:  # run as a script: the sibling module is first on sys.path
    from dbos_common import (  # type: ignore[import-not-found,no-redef]
        MISSING_EXIT,
        DbosMissing,
        Target,
        launched,
        load_dbos,
    )

RESULT_POLL = 0.002
CRASH_TIMEOUT = 300.0
FANOUT_WARMUP_MAX = 100
SELF = Path(__file__).resolve()
STAMPS: dict[str, list[float]] = {}
Flow = Callable[..., Awaitable[int]]


def take_stamps(key: str) -> list[float]:
    """The times recorded under ``key``, forgetting them."""
    return STAMPS.pop(key, [])


def stamp(key: str) -> None:
    """Record ``perf_counter()`` under ``key``."""
    STAMPS.setdefault(key, []).append(time.perf_counter())


@dataclass
class Flows:
    """The workflows, registered with DBOS (the same ones in every process of a round)."""

    timed_sequence: Flow
    stamped_fan_out: Flow
    crash_sequence: Flow
    one_step: Flow
    crash_at: list[int] = field(default_factory=list)
    """The step index whose body kills this process (empty: none does)."""


def register(dbos: Any) -> Flows:
    """Register the focused workflows and steps with ``dbos.DBOS``."""
    api = dbos.DBOS
    crash_at: list[int] = []

    async def _timed(key: str, index: int) -> int:
        stamp(f"{key}:in")
        stamp(f"{key}:out")
        return index

    async def _branch(key: str, index: int) -> int:
        stamp(key)
        return index

    async def _crash_point(key: str, index: int) -> int:
        stamp(key)
        if index in crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return index

    async def _noop(index: int) -> int:
        return index

    timed = api.step(name="timed")(_timed)
    branch = api.step(name="branch")(_branch)
    crash_point = api.step(name="crash_point")(_crash_point)
    noop = api.step(name="noop")(_noop)

    async def _timed_sequence(key: str, n: int) -> int:
        for index in range(n):
            await timed(key, index)
        return n

    async def _stamped_fan_out(key: str, n: int) -> int:
        results = await asyncio.gather(*[branch(key, index) for index in range(n)])
        return len(results)

    async def _crash_sequence(key: str, n: int) -> int:
        for index in range(n):
            await crash_point(key, index)
        return n

    async def _one_step(index: int) -> int:
        result: int = await noop(index)
        return result

    return Flows(
        timed_sequence=api.workflow(name="timed_sequence")(_timed_sequence),
        stamped_fan_out=api.workflow(name="stamped_fan_out")(_stamped_fan_out),
        crash_sequence=api.workflow(name="crash_sequence")(_crash_sequence),
        one_step=api.workflow(name="one_step")(_one_step),
        crash_at=crash_at,
    )


async def start(dbos: Any, fn: Flow, *args: object) -> Any:
    """``DBOS.start_workflow_async``: a handle whose ``get_result()`` awaits the workflow."""
    return await dbos.DBOS.start_workflow_async(fn, *args)


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def overhead(start: float, end: float, entries: list[float], exits: list[float]) -> float:
    """Wall time minus the time inside step bodies (as ``benchmarks.focused_stats``)."""
    if len(entries) != len(exits) or not entries:
        raise RuntimeError(f"{len(entries)} step entries, {len(exits)} exits")
    return (end - start) - sum(b - a for a, b in zip(entries, exits, strict=True))


async def measure_wo(dbos: Any, flows: Flows, n: int, repeat: int) -> list[float]:
    """Seconds outside the step bodies of each of ``repeat`` runs of ``n`` timed steps."""
    warm = _key("wo-warm")
    await (await start(dbos, flows.timed_sequence, warm, min(n, 10))).get_result()
    take_stamps(f"{warm}:in")
    take_stamps(f"{warm}:out")
    out: list[float] = []
    for _ in range(repeat):
        key = _key("wo")
        begin = time.perf_counter()
        result = await (await start(dbos, flows.timed_sequence, key, n)).get_result()
        end = time.perf_counter()
        entries, exits = take_stamps(f"{key}:in"), take_stamps(f"{key}:out")
        if result != n or len(entries) != n:
            raise RuntimeError(f"timed_sequence({n}): {result!r}, {len(entries)} bodies")
        out.append(overhead(begin, end, entries, exits))
    return out


async def measure_fanout(
    dbos: Any, flows: Flows, width: int, repeat: int
) -> tuple[list[float], list[float]]:
    """Seconds from starting to the first and to the last of ``width`` branches ending."""
    warm = _key("fan-warm")
    warm_width = min(width, FANOUT_WARMUP_MAX)
    await (await start(dbos, flows.stamped_fan_out, warm, warm_width)).get_result()
    take_stamps(warm)
    firsts: list[float] = []
    lasts: list[float] = []
    for _ in range(repeat):
        key = _key("fan")
        begin = time.perf_counter()
        result = await (await start(dbos, flows.stamped_fan_out, key, width)).get_result()
        ends = take_stamps(key)
        if result != width or len(ends) != width:
            raise RuntimeError(f"stamped_fan_out({width}): {result!r}, {len(ends)} ends")
        firsts.append(min(ends) - begin)
        lasts.append(max(ends) - begin)
    return firsts, lasts


async def measure_runs(dbos: Any, flows: Flows, n: int, repeat: int) -> list[float]:
    """Seconds to start ``n`` one-step workflows together and collect every result."""
    warm = await asyncio.gather(*[start(dbos, flows.one_step, i) for i in range(min(n, 10))])
    await asyncio.gather(*[h.get_result() for h in warm])
    out: list[float] = []
    for _ in range(repeat):
        begin = time.perf_counter()
        handles = await asyncio.gather(*[start(dbos, flows.one_step, i) for i in range(n)])
        await asyncio.gather(*[h.get_result() for h in handles])
        out.append(time.perf_counter() - begin)
    return out


async def crash_child(dbos: Any, flows: Flows, config: dict[str, Any], args: Any) -> int:
    """Run ``crash_sequence`` until its step at index ``args.steps`` kills this process."""
    flows.crash_at.append(args.steps)
    async with launched(dbos, config):
        with dbos.SetWorkflowID(args.workflow_id):
            handle = await start(dbos, flows.crash_sequence, args.key, args.steps + 1)
        await handle.get_result()
    print(f"workflow {args.workflow_id} ended: no step killed the worker", file=sys.stderr)
    return 3


async def measure_recovery(
    dbos: Any, flows: Flows, config: dict[str, Any], steps: int
) -> tuple[float, float]:
    """Kill a worker after ``steps`` completed steps; seconds from launching DBOS again to
    the next step's entry and to the workflow's result."""
    key = _key("recover")
    workflow_id = f"bench-{key}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SELF),
        "--crash-child",
        "--config",
        json.dumps(config),
        "--workflow-id",
        workflow_id,
        "--key",
        key,
        "--steps",
        str(steps),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), CRASH_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"the dying worker did not die within {CRASH_TIMEOUT:.0f} s") from None
    if process.returncode != -signal.SIGKILL:
        tail = " | ".join(err.decode(errors="replace").strip().splitlines()[-2:])
        raise RuntimeError(f"the dying worker exited with {process.returncode}: {tail}")
    begin = time.perf_counter()
    async with launched(dbos, config):
        handle = await dbos.DBOS.retrieve_workflow_async(workflow_id)
        result = await handle.get_result(polling_interval_sec=RESULT_POLL)
        end = time.perf_counter()
    stamps = take_stamps(key)
    if result != steps + 1 or len(stamps) != 1:
        raise RuntimeError(
            f"recovered workflow: result {result!r} after {len(stamps)} step bodies ran again"
        )
    return stamps[0] - begin, end - begin


async def measure(
    dbos: Any, flows: Flows, target: Target, scenarios: dict[str, Any]
) -> dict[str, Any]:
    """One round, raw samples keyed like ``FocusedRaw``."""
    repeat = int(scenarios["repeat"])
    raw: dict[str, Any] = {"wo": {}, "fanout_first": {}, "fanout_last": {}, "runs": {}}
    async with launched(dbos, target.config()):
        for n in scenarios["wo_steps"]:
            raw["wo"][str(n)] = await measure_wo(dbos, flows, int(n), repeat)
        for width in scenarios["fanout_widths"]:
            first, last = await measure_fanout(dbos, flows, int(width), repeat)
            raw["fanout_first"][str(width)], raw["fanout_last"][str(width)] = first, last
        for n in scenarios["concurrency"]:
            raw["runs"][str(n)] = await measure_runs(dbos, flows, int(n), repeat)
    steps = int(scenarios.get("recovery_steps", 0))
    if steps:
        entry, result = await measure_recovery(dbos, flows, target.config(), steps)
        raw.update(recovery_steps=steps, recovery_entry=[entry], recovery_result=[result])
    print(f"[bench] dbos {target.store} focused round: done", file=sys.stderr, flush=True)
    return raw


def parser() -> argparse.ArgumentParser:
    """The arguments: a round (``--store``, ``--scenarios``, ``--out``) or ``--crash-child``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--store", choices=["sqlite", "postgres"])
    p.add_argument("--scenarios", help="JSON of the scenarios to run")
    p.add_argument("--out", type=Path)
    p.add_argument("--dir", type=Path, help="directory for SQLite files")
    p.add_argument("--dsn", help="PostgreSQL URL of the database to use")
    p.add_argument("--schema-prefix", default="bench_dbos_focused")
    p.add_argument("--crash-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--workflow-id", help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Measure one round (or die as the crash child); 2 if DBOS is missing or on bad usage."""
    p = parser()
    args = p.parse_args(argv)
    if not args.crash_child and (args.store is None or args.scenarios is None or not args.out):
        p.error("--store, --scenarios and --out are required")
    try:
        dbos = load_dbos()
    except DbosMissing as exc:
        print(f"dbos_focused: {exc}", file=sys.stderr)
        return MISSING_EXIT
    flows = register(dbos)
    if args.crash_child:
        return asyncio.run(crash_child(dbos, flows, json.loads(args.config), args))
    target = Target("focused", args.store, args.dir, args.dsn, args.schema_prefix)
    raw = asyncio.run(measure(dbos, flows, target, json.loads(args.scenarios)))
    result = {
        "engine": "dbos",
        "version": importlib.metadata.version("dbos"),
        "python": sys.version.split()[0],
        "mode": "async workflows, async steps, DBOS.start_workflow_async",
        "raw": raw,
    }
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
