"""The sleepers scenarios on DBOS Transact, run by the interpreter of ``benchmarks/.peers/dbos``.

Not imported by the harness (DBOS is not a dependency of actorflow): the sleepers suite runs
this file as a subprocess and reads the JSON it writes to ``--out``. It mirrors
``benchmarks/sleepers_bench.py`` with an async DBOS workflow that awaits
``DBOS.sleep_async(3600)``, started with ``DBOS.start_workflow_async``, on a SQLite system
database in ``--dir``. Each phase runs in a process of its own (this script started again with
``--phase``), which prints one JSON line:

* ``fleet`` — launches DBOS on a fresh file, starts ``WARM`` workflows unmeasured, then n in
  rounds of ``START_ROUND`` at once: seconds until every one sleeps, and the RSS they added
  per workflow; then the process exits without shutting DBOS down (``os._exit``), so every
  workflow stays ``PENDING`` in the file;
* ``recover`` — a new process launches DBOS on that file; DBOS recovers pending workflows on
  launch (re-enqueued on its internal queue): seconds from creating DBOS until every workflow
  sleeps again, or until ``SETTLE_TIMEOUT_S``;
* ``live`` — tracemalloc: bytes one sleeping workflow retains (m workflows, on a fresh file).

A workflow sleeps once ``DBOS.sleep_async`` has recorded its sleep in the system database and
awaits ``asyncio.sleep`` of the time left: the process's event loop then holds a timer due
about an hour ahead. Those timers are counted (:func:`armed`), as actorflow's suite counts its
armed timers.

DBOS has no passivation: a sleeping workflow is a coroutine awaiting ``asyncio.sleep`` until
it wakes, so there is no passive figure. Without DBOS installed the script exits with status
2 and says so. DBOS is reached through values typed as ``Any``, so this file type-checks
without it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

MISSING_EXIT = 2
SLEEP_SECONDS = 3600.0
START_ROUND = 1000
WARM = 50
SETTLE_TIMEOUT_S = 300.0
PHASE_TIMEOUT_S = 2 * SETTLE_TIMEOUT_S + 120.0
SELF = Path(__file__).resolve()
ARMED_AFTER_S = SLEEP_SECONDS / 2
"""A timer of the event loop due further ahead than this is a sleeping workflow's."""
Flow = Callable[..., Awaitable[int]]


class DbosMissing(RuntimeError):
    """DBOS cannot be imported by this interpreter."""


def load_dbos() -> Any:
    """The ``dbos`` module, or :class:`DbosMissing` saying how to get it."""
    try:
        return importlib.import_module("dbos")
    except ImportError as exc:
        raise DbosMissing(
            f"DBOS is not installed for {sys.executable} ({exc}); run this script with the "
            "peer venv's interpreter (benchmarks/.peers/dbos/bin/python), as the harness does"
        ) from None


def register(dbos: Any) -> Flow:
    """Register the sleeping workflow with ``dbos.DBOS``."""
    api = dbos.DBOS

    async def _napper(index: int) -> int:
        await api.sleep_async(SLEEP_SECONDS)
        return index

    flow: Flow = api.workflow(name="napper")(_napper)
    return flow


def config(path: Path) -> dict[str, Any]:
    """A DBOS config whose system database is the SQLite file ``path``."""
    return {
        "name": "actorflow-bench-sleepers",
        "log_level": "WARNING",
        "system_database_url": f"sqlite:///{path}",
    }


def rss_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def armed() -> int:
    """How many workflows sleep in this process: timers of the running event loop due over
    ``ARMED_AFTER_S`` ahead (``DBOS.sleep_async`` records the sleep in the system database,
    then awaits ``asyncio.sleep`` of what is left, which arms such a timer)."""
    loop: Any = asyncio.get_running_loop()
    ahead = loop.time() + ARMED_AFTER_S
    return sum(1 for h in loop._scheduled if not h.cancelled() and h.when() > ahead)


async def until_armed(total: int, what: str) -> None:
    """Wait until ``total`` workflows sleep; TimeoutError after ``SETTLE_TIMEOUT_S``."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while (count := armed()) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {count:,} of {total:,} after {SETTLE_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.02)


async def start_sleepers(dbos: Any, flow: Flow, n: int) -> float:
    """Start ``n`` sleeping workflows in rounds; seconds until all of them sleep."""
    already = armed()
    begin = time.perf_counter()
    for first in range(0, n, START_ROUND):
        last = min(n, first + START_ROUND)
        await asyncio.gather(*(dbos.DBOS.start_workflow_async(flow, i) for i in range(first, last)))
    await until_armed(already + n, f"{n:,} workflows sleeping")
    return time.perf_counter() - begin


def launch(dbos: Any, path: Path) -> None:
    """Create and launch DBOS on the SQLite file ``path``."""
    dbos.DBOS(config=config(path))
    dbos.DBOS.launch()


async def phase_fleet(dbos: Any, flow: Flow, path: Path, n: int) -> dict[str, Any]:
    """Start ``WARM`` then ``n`` sleepers on a fresh file: start seconds, RSS per workflow."""
    launch(dbos, path)
    await start_sleepers(dbos, flow, WARM)
    gc.collect()
    before = rss_bytes()
    started = await start_sleepers(dbos, flow, n)
    gc.collect()
    return {"start_s": started, "rss_per_run": (rss_bytes() - before) / n}


async def phase_recover(dbos: Any, path: Path, total: int) -> dict[str, Any]:
    """Launch DBOS on ``path``: seconds until ``total`` workflows sleep again."""
    begin = time.perf_counter()
    launch(dbos, path)
    try:
        await until_armed(total, "workflows sleeping again")
    except TimeoutError as exc:
        return {"recovered": armed(), "timeout": str(exc)}
    return {"recovered": armed(), "recovery_s": time.perf_counter() - begin}


async def phase_live(dbos: Any, flow: Flow, path: Path, m: int) -> dict[str, Any]:
    """tracemalloc: bytes one live sleeping workflow retains, over ``m`` of them."""
    launch(dbos, path)
    await start_sleepers(dbos, flow, WARM)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        await start_sleepers(dbos, flow, m)
        gc.collect()
        return {"live_bytes": (tracemalloc.get_traced_memory()[0] - base) / m}
    finally:
        tracemalloc.stop()


def run_phase(dbos: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run the phase ``args.phase`` in this process."""
    flow = register(dbos)
    path = Path(args.db)
    if args.phase == "fleet":
        return asyncio.run(phase_fleet(dbos, flow, path, args.n))
    if args.phase == "recover":
        return asyncio.run(phase_recover(dbos, path, args.n + WARM))
    return asyncio.run(phase_live(dbos, flow, path, args.m))


def child(phase: str, db: Path, n: int, m: int) -> dict[str, Any]:
    """Run ``phase`` in a new process of this script; its JSON, or ``{"error": why}``."""
    command = [sys.executable, str(SELF), "--phase", phase, "--db", str(db)]
    command += ["--n", str(n), "--m", str(m)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PHASE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the {phase} process took over {PHASE_TIMEOUT_S:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:]) or "no output"
        return {"error": f"the {phase} process exited with {done.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure(directory: Path, n: int, m: int) -> dict[str, Any]:
    """Every phase, each in its own process; raw figures (or an ``error`` per phase)."""
    fleet_db = directory / "dbos-sleepers.sqlite"
    raw: dict[str, Any] = {"n": n, "m": m, "warm": WARM}
    raw["fleet"] = child("fleet", fleet_db, n, m)
    print(f"[bench] dbos sleepers fleet: {raw['fleet']}", file=sys.stderr, flush=True)
    if "error" in raw["fleet"]:
        raw["recover"] = {"error": "not run: the fleet it recovers was not started"}
    else:
        raw["recover"] = child("recover", fleet_db, n, m)
    print(f"[bench] dbos sleepers recover: {raw['recover']}", file=sys.stderr, flush=True)
    raw["live"] = child("live", directory / "dbos-live.sqlite", n, m)
    print(f"[bench] dbos sleepers live: {raw['live']}", file=sys.stderr, flush=True)
    return raw


def parser() -> argparse.ArgumentParser:
    """The arguments: a measurement (``--dir``, ``--n``, ``--m``, ``--out``) or a ``--phase``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--dir", type=Path, help="directory for the SQLite files")
    p.add_argument("--n", type=int, default=0, help="workflows started and recovered")
    p.add_argument("--m", type=int, default=0, help="workflows measured with tracemalloc")
    p.add_argument("--out", type=Path)
    p.add_argument("--phase", choices=["fleet", "recover", "live"], help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Measure (or run one phase); 2 if DBOS is missing or on bad usage."""
    p = parser()
    args = p.parse_args(argv)
    if args.phase is None and (args.dir is None or args.out is None):
        p.error("--dir and --out are required")
    if args.n <= 0 or args.m <= 0:
        p.error("--n and --m must be positive")
    try:
        dbos = load_dbos()
    except DbosMissing as exc:
        print(f"dbos_sleepers: {exc}", file=sys.stderr)
        return MISSING_EXIT
    logging.getLogger("dbos").setLevel(logging.WARNING)
    if args.phase is not None:
        try:
            result = run_phase(dbos, args)
        except Exception as exc:  # said in the JSON; DBOS's threads must not keep us alive
            result = {"error": f"{args.phase}: {type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # no shutdown: the fleet's workflows stay PENDING, as after a crash
    raw = measure(args.dir, args.n, args.m)
    result = {
        "engine": "dbos",
        "version": importlib.metadata.version("dbos"),
        "python": sys.version.split()[0],
        "mode": "async workflow awaiting DBOS.sleep_async, DBOS.start_workflow_async, SQLite",
        "raw": raw,
    }
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
