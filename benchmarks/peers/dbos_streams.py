"""The streams suite's scenarios on DBOS Transact, run by the interpreter of
``benchmarks/.peers/dbos``.

Not imported by the harness (DBOS is not a dependency of actorflow): the streams suite runs
this file as a subprocess once per round and store and reads the JSON it writes to ``--out``.
It mirrors ``benchmarks/stream_bench.py`` and ``benchmarks/stream_workflows.py`` with DBOS's
streams as it documents them: steps write with ``DBOS.write_stream_async`` and close with
``DBOS.close_stream_async``; readers are ``DBOS.read_stream_async`` in this process, started
as soon as ``DBOS.start_workflow_async`` returns (they read from offset 0):

* ``ttfb`` — from calling ``start_workflow_async`` to the reader holding the one small chunk
  the first step writes; also when the call returned and when the step wrote (seconds);
* ``throughput`` — one step writes ``--total`` bytes in ``--chunk`` chunks: from its first
  write to the reader holding every byte;
* ``parallel`` — ``--streams`` steps under ``asyncio.gather``, each writing ``--total`` bytes
  to its own stream, a reader each: from the first write to the last reader done (and from
  the start);
* ``pipeline`` — a writer of ``s0`` and ``--stages`` transform steps, step i reading ``s<i-1>``
  of its own workflow with ``DBOS.read_stream_async`` and writing it XORed with i to ``s<i>``,
  all at once: from the start to the reader of the last stream holding its last byte.

Readers re-read every ``READ_POLL_S`` when no notification came (DBOS's default is a second;
SQLite has no LISTEN/NOTIFY), as the reference suite's DBOS script does. Each scenario runs on
a fresh system database (a new SQLite file in ``--dir`` or a new PostgreSQL schema) after its
warm-up runs, as actorflow's; every reader checks every byte. A scenario that fails is written
under ``not_run`` with why; the others still run. Without DBOS installed the script exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

try:
    from .dbos_common import (
        MISSING_EXIT,
        DbosMissing,
        Target,
        add_store_arguments,
        check_store_arguments,
        launched,
        load_dbos,
        pattern,
        pipeline_output,
        write_result,
        xor_table,
    )
except ImportError:  # run as a script: the sibling module is first on sys.path
    from dbos_common import (  # type: ignore[import-not-found,no-redef]
        MISSING_EXIT,
        DbosMissing,
        Target,
        add_store_arguments,
        check_store_arguments,
        launched,
        load_dbos,
        pattern,
        pipeline_output,
        write_result,
        xor_table,
    )

SCENARIOS = ("ttfb", "throughput", "parallel", "pipeline")
WARMUP = 2
"""Unrecorded first-byte runs (the other scenarios drop one), as the streams suite."""
READ_POLL_S = 0.01
MODE = (
    "steps writing with DBOS.write_stream_async / close_stream_async, readers "
    f"DBOS.read_stream_async (polling_interval_sec={READ_POLL_S}); DBOS.start_workflow_async"
)
FIRST_WRITE: dict[str, list[float]] = {}
"""When each writer of a run began writing (``perf_counter``), by the run's key."""
Flow = Callable[..., Awaitable[int]]


@dataclass(frozen=True)
class Sizes:
    """What the scenarios move, and how often."""

    total: int
    chunk: int
    ttfb_samples: int
    repeat: int
    streams: int
    stages: int


@dataclass
class Flows:
    """The workflows, registered with DBOS."""

    first_byte: Flow
    bulk: Flow
    parallel: Flow
    pipeline: Flow


def register(dbos: Any) -> Flows:
    """Register the streams workflows and their steps with ``dbos.DBOS``."""
    DBOS = dbos.DBOS

    async def _write_one(key: str, namespace: str) -> int:
        FIRST_WRITE.setdefault(key, []).append(time.perf_counter())
        await DBOS.write_stream_async(namespace, b"x")
        await DBOS.close_stream_async(namespace)
        return 1

    write_one = DBOS.step(name="streams_write_one")(_write_one)

    async def _write_bytes(key: str, namespace: str, total: int, chunk: int) -> int:
        data = pattern(total)
        FIRST_WRITE.setdefault(key, []).append(time.perf_counter())
        for offset in range(0, total, chunk):
            await DBOS.write_stream_async(namespace, data[offset : offset + chunk])
        await DBOS.close_stream_async(namespace)
        return total

    write_bytes = DBOS.step(name="streams_write_bytes")(_write_bytes)

    async def _transform(source: str, target: str, mask: int) -> int:
        table = xor_table(mask)
        count = 0
        async for piece in DBOS.read_stream_async(
            DBOS.workflow_id, source, polling_interval_sec=READ_POLL_S
        ):
            await DBOS.write_stream_async(target, bytes(piece).translate(table))
            count += len(piece)
        await DBOS.close_stream_async(target)
        return count

    transform = DBOS.step(name="streams_transform")(_transform)

    async def _first_byte(key: str, namespace: str) -> int:
        result: int = await write_one(key, namespace)
        return result

    async def _bulk(key: str, total: int, chunk: int) -> int:
        result: int = await write_bytes(key, "bulk", total, chunk)
        return result

    async def _parallel(key: str, streams: int, total: int, chunk: int) -> int:
        writers = [write_bytes(key, f"p{i}", total, chunk) for i in range(streams)]
        return sum(await asyncio.gather(*writers))

    async def _pipeline(key: str, stages: int, total: int, chunk: int) -> int:
        counts = await asyncio.gather(
            write_bytes(key, "s0", total, chunk),
            *[transform(f"s{i - 1}", f"s{i}", i) for i in range(1, stages + 1)],
        )
        last: int = counts[-1]
        return last

    workflow = DBOS.workflow
    return Flows(
        first_byte=workflow(name="streams_first_byte")(_first_byte),
        bulk=workflow(name="streams_bulk")(_bulk),
        parallel=workflow(name="streams_parallel")(_parallel),
        pipeline=workflow(name="streams_pipeline")(_pipeline),
    )


@dataclass
class Reading:
    """What a reader received, and when (``perf_counter``) the first and last chunks came."""

    data: bytearray
    first: float
    last: float


async def read_all(DBOS: Any, workflow_id: str, namespace: str) -> Reading:
    """Read ``namespace`` of ``workflow_id`` to its end, noting the first and last chunks."""
    data = bytearray()
    first = last = 0.0
    async for piece in DBOS.read_stream_async(
        workflow_id, namespace, polling_interval_sec=READ_POLL_S
    ):
        now = time.perf_counter()
        if not data:
            first = now
        data += piece
        last = now
    if not data:
        raise RuntimeError(f"stream {namespace!r} of {workflow_id} ended with no data")
    return Reading(data, first, last)


def check(reading: Reading, expected: bytes, what: str) -> None:
    """Raise ``RuntimeError`` unless ``reading`` holds exactly ``expected``."""
    if reading.data != expected:
        raise RuntimeError(f"{what}: got {len(reading.data):,} bytes, wrong or not all of them")


def key(prefix: str) -> str:
    """A run's unique key."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def measure_ttfb(DBOS: Any, flows: Flows, sizes: Sizes) -> dict[str, list[float]]:
    """Per run, seconds from calling start to: the first chunk at the reader; start
    returning; the step's write."""
    out: dict[str, list[float]] = {"ttfb": [], "ttfb_returned": [], "ttfb_written": []}
    for index in range(WARMUP + sizes.ttfb_samples):
        run = key("first")
        start = time.perf_counter()
        handle = await DBOS.start_workflow_async(flows.first_byte, run, "first")
        started = time.perf_counter()
        reading = await read_all(DBOS, handle.get_workflow_id(), "first")
        await handle.get_result()
        check(reading, b"x", "ttfb stream")
        (written,) = FIRST_WRITE.pop(run)
        if index >= WARMUP:
            out["ttfb"].append(reading.first - start)
            out["ttfb_returned"].append(started - start)
            out["ttfb_written"].append(written - start)
    return out


async def measure_throughput(DBOS: Any, flows: Flows, sizes: Sizes) -> dict[str, list[float]]:
    """Seconds from the first write to the reader holding every byte, per run."""
    expected = pattern(sizes.total)
    spans: list[float] = []
    for index in range(1 + sizes.repeat):
        run = key("bulk")
        handle = await DBOS.start_workflow_async(flows.bulk, run, sizes.total, sizes.chunk)
        reading = await read_all(DBOS, handle.get_workflow_id(), "bulk")
        await handle.get_result()
        check(reading, expected, "throughput stream")
        (written,) = FIRST_WRITE.pop(run)
        if index >= 1:
            spans.append(reading.last - written)
    return {"throughput": spans}


async def measure_parallel(DBOS: Any, flows: Flows, sizes: Sizes) -> dict[str, list[float]]:
    """Per run: seconds from the first write to the last reader done, and from the start."""
    expected = pattern(sizes.total)
    out: dict[str, list[float]] = {"parallel": [], "parallel_wall": []}
    for index in range(1 + sizes.repeat):
        run = key("parallel")
        start = time.perf_counter()
        handle = await DBOS.start_workflow_async(
            flows.parallel, run, sizes.streams, sizes.total, sizes.chunk
        )
        workflow_id = handle.get_workflow_id()
        readings = await asyncio.gather(
            *[read_all(DBOS, workflow_id, f"p{i}") for i in range(sizes.streams)]
        )
        await handle.get_result()
        for i, reading in enumerate(readings):
            check(reading, expected, f"parallel stream p{i}")
        writes = FIRST_WRITE.pop(run)
        if len(writes) != sizes.streams:
            raise RuntimeError(f"{len(writes)} of {sizes.streams} writers ran")
        done = max(r.last for r in readings)
        if index >= 1:
            out["parallel"].append(done - min(writes))
            out["parallel_wall"].append(done - start)
    return out


async def measure_pipeline(DBOS: Any, flows: Flows, sizes: Sizes) -> dict[str, list[float]]:
    """Seconds from the start to the last byte of the last stage at the reader."""
    expected = pipeline_output(sizes.total, sizes.stages)
    last = f"s{sizes.stages}"
    spans: list[float] = []
    for index in range(1 + sizes.repeat):
        run = key("pipeline")
        start = time.perf_counter()
        handle = await DBOS.start_workflow_async(
            flows.pipeline, run, sizes.stages, sizes.total, sizes.chunk
        )
        reading = await read_all(DBOS, handle.get_workflow_id(), last)
        result = await handle.get_result()
        check(reading, expected, f"pipeline stream {last}")
        FIRST_WRITE.pop(run, None)
        if result != sizes.total:
            raise RuntimeError(f"the last transform passed {result:,} of {sizes.total:,} B")
        if index >= 1:
            spans.append(reading.last - start)
    return {"pipeline": spans}


MEASURES = {
    "ttfb": measure_ttfb,
    "throughput": measure_throughput,
    "parallel": measure_parallel,
    "pipeline": measure_pipeline,
}


async def measure(
    dbos: Any, target: Target, scenarios: list[str], sizes: Sizes
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Each of ``scenarios`` on a fresh system database: raw samples, and what failed."""
    flows = register(dbos)
    raw: dict[str, list[float]] = {}
    not_run: dict[str, str] = {}
    for scenario in scenarios:
        try:
            async with launched(dbos, target.config()):
                raw.update(await MEASURES[scenario](dbos.DBOS, flows, sizes))
        except Exception as exc:
            not_run[scenario] = f"{type(exc).__name__}: {exc}"
        print(f"[bench] dbos {target.store} streams {scenario}: done", file=sys.stderr, flush=True)
    return raw, not_run


def parser() -> argparse.ArgumentParser:
    """The arguments: the store's flags, the scenarios and their sizes."""
    p = argparse.ArgumentParser(
        prog="dbos_streams.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add_store_arguments(p, "bench_dbos_streams")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    for name, what in (
        ("total", "bytes per stream"),
        ("chunk", "bytes per chunk"),
        ("ttfb-samples", "first-byte runs recorded"),
        ("repeat", "runs recorded per other scenario"),
        ("streams", "parallel streams"),
        ("stages", "pipeline transforms"),
    ):
        p.add_argument(f"--{name}", type=int, required=True, help=what)
    return p


def main(argv: list[str] | None = None) -> int:
    """Measure the scenarios and write the JSON; 2 if DBOS is missing or on bad usage."""
    p = parser()
    args = p.parse_args(argv)
    check_store_arguments(p, args)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown or not scenarios:
        p.error(f"unknown or no scenario(s) {unknown}: use {', '.join(SCENARIOS)}")
    sizes = Sizes(args.total, args.chunk, args.ttfb_samples, args.repeat, args.streams, args.stages)
    if min(sizes.total, sizes.chunk, sizes.ttfb_samples, sizes.repeat, sizes.streams) < 1:
        p.error("--total, --chunk, --ttfb-samples, --repeat and --streams must be at least 1")
    if sizes.stages < 1:
        p.error("--stages must be at least 1")
    try:
        dbos = load_dbos()
    except DbosMissing as exc:
        print(f"dbos_streams: {exc}", file=sys.stderr)
        return MISSING_EXIT
    target = Target.of("streams", args)
    raw, not_run = asyncio.run(measure(dbos, target, scenarios, sizes))
    write_result(args.out, MODE, raw, not_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
