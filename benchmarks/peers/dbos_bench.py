"""The runtime scenarios on DBOS Transact, run by the interpreter of ``benchmarks/.peers/dbos``.

Not imported by the harness (DBOS is not a dependency of actorflow): the peers suite runs
this file as a subprocess and reads the JSON it writes to ``--out``. It mirrors the timing
loops of ``benchmarks/runtime_bench.py`` (same workflows, warm-ups and raw samples, in
seconds) with DBOS's async workflows and async steps, each scenario on a fresh system
database: a new SQLite file, or a new PostgreSQL schema (``--schema-prefix`` + a number;
the harness drops them afterwards).

DBOS is reached through :data:`DBOS` typed as ``Any``, so this file type-checks without DBOS
installed; its decorators are applied by call, and the decorated functions are cast back to
their declared signatures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import itertools
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

_dbos: Any = importlib.import_module("dbos")
DBOS: Any = _dbos.DBOS

TTFS_WARMUP = 3
STAMPS: dict[str, list[float]] = {}


def take_stamps(key: str) -> list[float]:
    """The entry times recorded under ``key``, forgetting them."""
    return STAMPS.pop(key, [])


async def _mark(key: str, index: int) -> int:
    STAMPS.setdefault(key, []).append(time.perf_counter())
    return index


async def _noop(index: int) -> int:
    return index


mark = cast(Callable[[str, int], Awaitable[int]], DBOS.step(name="mark")(_mark))
noop = cast(Callable[[int], Awaitable[int]], DBOS.step(name="noop")(_noop))


async def _first_step(key: str) -> int:
    return await mark(key, 0)


async def _sequential(key: str, n: int) -> int:
    for index in range(n):
        await mark(key, index)
    return n


async def _fan_out(n: int) -> int:
    results = await asyncio.gather(*[noop(index) for index in range(n)])
    return len(results)


async def _one_step(index: int) -> int:
    return await noop(index)


first_step = cast(Callable[[str], Awaitable[int]], DBOS.workflow(name="first_step")(_first_step))
sequential = cast(
    Callable[[str, int], Awaitable[int]], DBOS.workflow(name="sequential")(_sequential)
)
fan_out = cast(Callable[[int], Awaitable[int]], DBOS.workflow(name="fan_out")(_fan_out))
one_step = cast(Callable[[int], Awaitable[int]], DBOS.workflow(name="one_step")(_one_step))


async def start(fn: Callable[..., Awaitable[int]], *args: object) -> Any:
    """``DBOS.start_workflow_async``: a handle whose ``get_result()`` awaits the workflow."""
    return await DBOS.start_workflow_async(fn, *args)


class Target:
    """Where each scenario's fresh system database goes."""

    def __init__(self, store: str, directory: Path | None, dsn: str | None, prefix: str) -> None:
        self.store = store
        self.directory = directory
        self.dsn = dsn
        self.prefix = prefix
        self.count = 0

    def config(self) -> dict[str, Any]:
        """A DBOS config for a new, empty system database."""
        self.count += 1
        config: dict[str, Any] = {"name": "actorflow-bench", "log_level": "WARNING"}
        if self.store == "sqlite":
            assert self.directory is not None
            path = self.directory / f"dbos-{self.count}.sqlite"
            config["system_database_url"] = f"sqlite:///{path}"
        else:
            assert self.dsn is not None
            config["system_database_url"] = self.dsn
            config["dbos_system_schema"] = f"{self.prefix}_{self.count}"
        return config


@asynccontextmanager
async def launched(target: Target, name: str) -> AsyncIterator[None]:
    """A launched DBOS on a fresh system database, destroyed afterwards."""
    DBOS(config=target.config())
    DBOS.launch()
    try:
        yield
    finally:
        DBOS.destroy()
        print(f"[bench] dbos {target.store} {name}: done", file=sys.stderr, flush=True)


async def measure_ttfs(samples: int) -> list[float]:
    """Seconds from starting a workflow to its first step body's first line."""
    out: list[float] = []
    for index in range(TTFS_WARMUP + samples):
        key = f"ttfs-{index}"
        begin = time.perf_counter()
        handle = await start(first_step, key)
        await handle.get_result()
        stamps = take_stamps(key)
        if index >= TTFS_WARMUP:
            out.append(stamps[0] - begin)
    return out


async def measure_sequential(
    n: int, repeat: int
) -> tuple[list[list[float]], list[float], list[float]]:
    """Per repetition: gaps between step bodies, last body to result, wall time."""
    await (await start(sequential, "seq-warm", min(n, 10))).get_result()
    take_stamps("seq-warm")
    gaps: list[list[float]] = []
    tails: list[float] = []
    walls: list[float] = []
    for rep in range(repeat):
        key = f"seq-{n}-{rep}"
        begin = time.perf_counter()
        handle = await start(sequential, key, n)
        await handle.get_result()
        end = time.perf_counter()
        stamps = take_stamps(key)
        if len(stamps) != n:
            raise RuntimeError(f"expected {n} step bodies, {len(stamps)} ran")
        gaps.append([b - a for a, b in itertools.pairwise(stamps)])
        tails.append(end - stamps[-1])
        walls.append(end - begin)
    return gaps, tails, walls


async def measure_gather(n: int, repeat: int) -> list[float]:
    """Seconds from start to result of a workflow gathering ``n`` no-op steps."""
    await (await start(fan_out, n)).get_result()
    out: list[float] = []
    for _ in range(repeat):
        begin = time.perf_counter()
        handle = await start(fan_out, n)
        await handle.get_result()
        out.append(time.perf_counter() - begin)
    return out


async def measure_one_step_runs(n: int, repeat: int) -> list[float]:
    """Seconds to start ``n`` one-step workflows together and collect every result."""
    warm = await asyncio.gather(*[start(one_step, i) for i in range(min(n, 10))])
    await asyncio.gather(*[h.get_result() for h in warm])
    out: list[float] = []
    for _ in range(repeat):
        begin = time.perf_counter()
        handles = await asyncio.gather(*[start(one_step, i) for i in range(n)])
        await asyncio.gather(*[h.get_result() for h in handles])
        out.append(time.perf_counter() - begin)
    return out


async def measure(target: Target, scenarios: dict[str, Any]) -> dict[str, Any]:
    """Every scenario, each on a fresh system database; raw samples keyed like RuntimeRaw."""
    raw: dict[str, Any] = {
        "ttfs": [],
        "seq_gaps": {},
        "seq_tail": {},
        "seq_wall": {},
        "gather": {},
        "one_step": {},
    }
    async with launched(target, "ttfs"):
        raw["ttfs"] = await measure_ttfs(int(scenarios["ttfs_samples"]))
    for n in scenarios["seq_lengths"]:
        async with launched(target, f"seq n={n}"):
            gaps, tails, walls = await measure_sequential(int(n), int(scenarios["seq_repeat"]))
        raw["seq_gaps"][str(n)] = gaps
        raw["seq_tail"][str(n)] = tails
        raw["seq_wall"][str(n)] = walls
    for n in scenarios["gather_sizes"]:
        async with launched(target, f"gather n={n}"):
            raw["gather"][str(n)] = await measure_gather(int(n), int(scenarios["gather_repeat"]))
    n = int(scenarios["one_step_runs"])
    async with launched(target, f"one-step runs n={n}"):
        raw["one_step"][str(n)] = await measure_one_step_runs(n, int(scenarios["one_step_repeat"]))
    return raw


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, write the JSON result to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--scenarios", required=True, help="JSON of the scenarios to run")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dir", type=Path, help="directory for SQLite files")
    parser.add_argument("--dsn", help="PostgreSQL URL of the database to use")
    parser.add_argument("--schema-prefix", default="bench_dbos")
    args = parser.parse_args(argv)
    logging.getLogger("dbos").setLevel(logging.WARNING)
    target = Target(args.store, args.dir, args.dsn, args.schema_prefix)
    raw = asyncio.run(measure(target, json.loads(args.scenarios)))
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
