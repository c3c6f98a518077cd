"""The hooks suite's scenarios on DBOS Transact, run by the interpreter of
``benchmarks/.peers/dbos``.

Not imported by the harness (DBOS is not a dependency of actorflow): the hooks suite runs this
file as a subprocess for each turn DBOS takes (a scenario's ``--samples`` share of a round)
and reads the JSON it writes to ``--out``. It mirrors
``benchmarks/hook_bench.py`` with DBOS's equivalent of a hook: a workflow parked in
``DBOS.recv_async(TOPIC)``, woken by ``send_async(workflow_id, "go", TOPIC)``. Each sample starts
a ``hook_then_step`` workflow, waits until its ``recv`` waiter is registered and ``SETTLE``
seconds more, then sends and times, from the send call, the workflow resuming after ``recv``
(``to_workflow``), the body of the step it calls next (``to_step``) and the send returning
(``call``), after ``warmup`` unrecorded samples:

* ``resume`` — ``DBOS.send_async`` from the same DBOS app (``perf_counter``);
* ``resume_xproc`` — ``DBOSClient.send_async`` from a client process on the same system
  database (this script again, with ``--client``); both processes' ``time.time()`` compared.

Each scenario gets a fresh system database: a new SQLite file in ``--dir``, or a new PostgreSQL
schema (``--schema-prefix`` + a number; the harness drops them afterwards). A scenario that
fails is reported under ``not_run`` with why; the others still run. Without DBOS installed the
script exits with status 2 and says so. DBOS is reached through values typed as ``Any``, so
this file type-checks without it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
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

TOPIC = "bench"
SETTLE = 0.005
"""Seconds to wait after the workflow's recv waiter exists (as the hooks suite's SETTLE)."""
WAIT = 10.0
"""Seconds to wait for a waiter, a resume or a result before calling it a hang."""
RECV_TIMEOUT = 60.0
RESULT_POLL = 0.002
SCENARIOS = ("resume", "resume_xproc")
SELF = Path(__file__).resolve()
Stamp = tuple[float, float]
RESUMED: dict[str, Stamp] = {}
STEP_ENTERED: dict[str, Stamp] = {}
Flow = Callable[..., Awaitable[Any]]


def stamp() -> Stamp:
    """Both clocks now: ``perf_counter`` for this process, ``time.time`` across processes."""
    return time.perf_counter(), time.time()


def register(dbos: Any) -> Flow:
    """Register ``hook_then_step`` (and its step) with ``dbos.DBOS``; the workflow."""
    api = dbos.DBOS

    async def _after_hook(key: str) -> int:
        STEP_ENTERED.setdefault(key, stamp())
        return 0

    after_hook = api.step(name="after_hook")(_after_hook)

    async def _hook_then_step(key: str) -> Any:
        payload = await api.recv_async(TOPIC, timeout_seconds=RECV_TIMEOUT)
        RESUMED.setdefault(key, stamp())
        await after_hook(key)
        return payload

    flow: Flow = api.workflow(name="hook_then_step")(_hook_then_step)
    return flow


def waiting(dbos: Any, workflow_id: str) -> bool:
    """Whether ``workflow_id`` has a ``recv`` waiter registered with DBOS's system database."""
    sys_db = importlib.import_module("dbos._dbos")._get_dbos_instance()._sys_db
    return any(parts[0] == workflow_id for _, parts, _ in sys_db.notifications_map.snapshot())


@dataclass
class Parked:
    """A workflow parked in ``recv``: its key, id and handle."""

    key: str
    workflow_id: str
    handle: Any


async def park(dbos: Any, flow: Flow) -> Parked:
    """Start ``hook_then_step`` and return once it waits in ``recv`` (plus ``SETTLE``)."""
    key = f"hook-{uuid.uuid4().hex[:12]}"
    workflow_id = f"bench-{key}"
    with dbos.SetWorkflowID(workflow_id):
        handle = await dbos.DBOS.start_workflow_async(flow, key)
    async with asyncio.timeout(WAIT):
        while True:  # DBOS offers no wait for a waiter to exist: poll its registry
            if waiting(dbos, workflow_id):
                break
            await asyncio.sleep(0.001)
    await asyncio.sleep(SETTLE)
    return Parked(key, workflow_id, handle)


async def finish(parked: Parked) -> tuple[Stamp, Stamp]:
    """Await the workflow's result (the payload) and take its stamps."""
    result = await asyncio.wait_for(parked.handle.get_result(), WAIT)
    if result != "go":
        raise RuntimeError(f"workflow {parked.workflow_id} returned {result!r}, not 'go'")
    return RESUMED.pop(parked.key), STEP_ENTERED.pop(parked.key)


async def measure_in_process(
    dbos: Any, flow: Flow, samples: int, warmup: int
) -> dict[str, list[float]]:
    """``DBOS.send_async`` from the app that hosts the workflow (``perf_counter``)."""
    out: dict[str, list[float]] = {"to_step": [], "to_workflow": [], "call": []}
    for index in range(warmup + samples):
        parked = await park(dbos, flow)
        called = time.perf_counter()
        await dbos.DBOS.send_async(parked.workflow_id, "go", TOPIC)
        returned = time.perf_counter()
        resumed, entered = await finish(parked)
        if index >= warmup:
            out["to_step"].append(entered[0] - called)
            out["to_workflow"].append(resumed[0] - called)
            out["call"].append(returned - called)
    return out


@asynccontextmanager
async def client_process(config: dict[str, Any]) -> AsyncIterator[asyncio.subprocess.Process]:
    """This script as a ``--client`` on ``config``'s system database, ready; ended afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SELF),
        "--client",
        "--config",
        json.dumps(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"the DBOS client did not start (said {line!r}; see stderr)")
        yield process
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def ask(process: asyncio.subprocess.Process, workflow_id: str) -> dict[str, Any]:
    """Have the client send to ``workflow_id``; its reply (``called``, ``returned``)."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(workflow_id.encode() + b"\n")
    await process.stdin.drain()
    line = await asyncio.wait_for(process.stdout.readline(), WAIT)
    if not line:
        raise RuntimeError("the DBOS client exited (see stderr)")
    reply: dict[str, Any] = json.loads(line)
    if "error" in reply:
        raise RuntimeError(f"the DBOS client's send failed: {reply['error']}")
    return reply


async def measure_cross_process(
    dbos: Any, flow: Flow, config: dict[str, Any], samples: int, warmup: int
) -> dict[str, list[float]]:
    """``DBOSClient.send_async`` from another process (``time.time()`` in both)."""
    out: dict[str, list[float]] = {"to_step": [], "to_workflow": [], "call": []}
    async with client_process(config) as process:
        for index in range(warmup + samples):
            parked = await park(dbos, flow)
            reply = await ask(process, parked.workflow_id)
            resumed, entered = await finish(parked)
            called = float(reply["called"])
            if index >= warmup:
                out["to_step"].append(entered[1] - called)
                out["to_workflow"].append(resumed[1] - called)
                out["call"].append(float(reply["returned"]) - called)
    return out


async def serve_client(dbos: Any, config: dict[str, Any]) -> int:
    """The ``--client``: send ``"go"`` to each workflow id read from stdin, until its end."""
    client = dbos.DBOSClient(
        system_database_url=config["system_database_url"],
        dbos_system_schema=config.get("dbos_system_schema", "dbos"),
    )
    try:
        print("ready", flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            workflow_id = line.strip()
            called = time.time()
            try:
                await client.send_async(workflow_id, "go", TOPIC)
            except Exception as exc:
                reply: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
            else:
                reply = {"called": called, "returned": time.time()}
            print(json.dumps(reply), flush=True)
    finally:
        client.destroy()
    return 0


async def measure(
    dbos: Any, flow: Flow, target: Target, scenarios: list[str], samples: int, warmup: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each of ``scenarios`` on a fresh system database: raw samples, and what failed."""
    raw: dict[str, Any] = {}
    not_run: dict[str, str] = {}
    for scenario in scenarios:
        config = target.config()
        try:
            async with launched(dbos, config):
                if scenario == "resume":
                    raw[scenario] = await measure_in_process(dbos, flow, samples, warmup)
                else:
                    raw[scenario] = await measure_cross_process(dbos, flow, config, samples, warmup)
        except Exception as exc:
            not_run[scenario] = f"{type(exc).__name__}: {exc}"
        print(f"[bench] dbos {target.store} hooks {scenario}: done", file=sys.stderr, flush=True)
    return raw, not_run


def parser() -> argparse.ArgumentParser:
    """The arguments: a store's scenarios (``--store``, ``--samples``, ``--out``…) or
    ``--client``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--store", choices=["sqlite", "postgres"])
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    p.add_argument("--samples", type=int)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", type=Path)
    p.add_argument("--dir", type=Path, help="directory for SQLite files")
    p.add_argument("--dsn", help="PostgreSQL URL of the database to use")
    p.add_argument("--schema-prefix", default="bench_dbos_hooks")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Measure a store's scenarios (or serve as the client); 2 if DBOS is missing or on bad
    usage."""
    p = parser()
    args = p.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    if not args.client:
        if args.store is None or args.samples is None or not args.out:
            p.error("--store, --samples and --out are required")
        if args.samples < 1 or args.warmup < 0:
            p.error("--samples must be at least 1 and --warmup at least 0")
        unknown = sorted(set(scenarios) - set(SCENARIOS))
        if unknown:
            p.error(f"unknown scenario(s) {unknown}: use {', '.join(SCENARIOS)}")
        if args.store == "sqlite" and args.dir is None:
            p.error("--store sqlite needs --dir")
        if args.store == "postgres" and args.dsn is None:
            p.error("--store postgres needs --dsn")
    try:
        dbos = load_dbos()
    except DbosMissing as exc:
        print(f"dbos_hooks: {exc}", file=sys.stderr)
        return MISSING_EXIT
    if args.client:
        return asyncio.run(serve_client(dbos, json.loads(args.config)))
    flow = register(dbos)
    target = Target("hooks", args.store, args.dir, args.dsn, args.schema_prefix)
    raw, not_run = asyncio.run(measure(dbos, flow, target, scenarios, args.samples, args.warmup))
    result = {
        "engine": "dbos",
        "version": importlib.metadata.version("dbos"),
        "python": sys.version.split()[0],
        "mode": "DBOS.recv_async in an async workflow; DBOS.send_async / DBOSClient.send_async",
        "raw": raw,
        "not_run": not_run,
    }
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
