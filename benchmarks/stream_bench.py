"""The ``streams`` suite: how fast chunks written by steps reach a reader, per store.

Scenarios, each on a fresh store with its own ``Runtime``; readers are ``run.stream()`` in
the benchmark process, started as soon as ``rt.start()`` returns (a reader reads from index
0, so it misses nothing written before it began):

* ``ttfb`` — from calling ``rt.start()`` to the reader holding the first chunk of a run
  whose first step writes one small chunk at once (also a series, :data:`STREAMS_TTFB`), and
  ``stream_latency``, from the step writing that chunk to the reader holding it;
* ``throughput`` — one step writes the stream size (1 MiB) in chunks (64 KiB): from the
  first write to the reader holding every byte, as MiB/s;
* ``parallel`` — that many steps under ``asyncio.gather``, each writing the stream size to
  its own namespace, one reader each: from the first write to the last reader done;
* ``pipeline`` — a writer of ``s0`` and transform steps, step i reading ``s<i-1>`` through
  the Runtime and writing it XORed with i to ``s<i>``, all running at once: from calling
  ``rt.start()`` to the reader of the last stream holding its last byte.

Every reader checks every byte it got; a wrong byte or count is an error, not a number.
Given ``only`` (names from :data:`SCENARIOS`), the suite runs those scenarios alone.

With a peer (``--peers dbos``), DBOS runs every one of these scenarios with its streams API
(:mod:`benchmarks.peers.dbos_streams`) on SQLite and PostgreSQL, in rounds that take turns
with actorflow's; its samples are summarized by the same code and each row compared
ours/DBOS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from runtime import Run, Runtime

from . import stats
from .config import MIB, PEER_STORE_KINDS, Plan
from .model import STREAMS_TTFB, Row, Series, SuiteResult, WrongResultError
from .peers.streams_peer import run_dbos_streams
from .peers.suite import compare
from .peers.turns import Turns, peer_env, take_turns
from .peers.venv import PeerEnv
from .progress import say
from .rounds import shares
from .rows import mib_per_s, ms_row, rate_row
from .stores import each_store, fresh_store_url, sqlite_mode
from .stream_workflows import (
    STREAM_WORKFLOWS,
    pattern,
    pipeline_output,
    stream_bulk,
    stream_first_byte,
    stream_parallel,
    stream_pipeline,
    take_first_writes,
)

SUITE = "streams"
SCENARIOS = ("ttfb", "throughput", "parallel", "pipeline")
WARMUP = 2
SCENARIO_TIMEOUT = 300.0
TTFB_TARGET_MS = {"sqlite": 2.0, "postgres": 5.0}
PIPELINE_TARGET_MS = {"sqlite": 100.0}
"""Targets for the pipeline of a 1 MiB stream (other sizes have none)."""


@dataclass(frozen=True)
class StreamSizes:
    """What the streams scenarios move, and how often."""

    total: int
    chunk: int
    ttfb_samples: int
    repeat: int
    streams: int
    stages: int

    @classmethod
    def of(cls, plan: Plan) -> StreamSizes:
        """The sizes of ``plan``."""
        return cls(
            total=plan.stream_bytes,
            chunk=plan.stream_chunk,
            ttfb_samples=plan.stream_ttfb_samples,
            repeat=plan.stream_repeat,
            streams=plan.parallel_streams,
            stages=plan.pipeline_stages,
        )


@dataclass
class Reading:
    """What a reader received, and when (``perf_counter``) the first and last chunks came."""

    data: bytearray
    first: float
    last: float


@dataclass
class StreamRaw:
    """Raw samples in seconds, by scenario (empty: the scenario did not run)."""

    ttfb: list[float] = field(default_factory=list)
    ttfb_returned: list[float] = field(default_factory=list)
    ttfb_written: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)
    parallel: list[float] = field(default_factory=list)
    parallel_wall: list[float] = field(default_factory=list)
    pipeline: list[float] = field(default_factory=list)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The names of the sample lists (a peer script's JSON keys)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def joined(cls, parts: Sequence[StreamRaw]) -> StreamRaw:
        """The samples of ``parts`` (rounds of one engine) together."""
        out = cls()
        for part in parts:
            for name in cls.fields():
                getattr(out, name).extend(getattr(part, name))
        return out

    def without(self, scenarios: Collection[str]) -> StreamRaw:
        """These samples but those of ``scenarios`` (the fields their names start)."""
        keep = {
            name: list(getattr(self, name))
            for name in self.fields()
            if not any(name.startswith(s) for s in scenarios)
        }
        return StreamRaw(**keep)


async def read_all(run: Run, namespace: str) -> Reading:
    """Read ``namespace`` of ``run`` to its end, noting when the first and last chunks came."""
    data = bytearray()
    first = last = 0.0
    async for piece in run.stream(namespace):
        now = time.perf_counter()
        if not isinstance(piece, bytes):
            raise WrongResultError(f"stream {namespace!r} yielded {type(piece).__name__}")
        if not data:
            first = now
        data += piece
        last = now
    if not data:
        raise WrongResultError(f"stream {namespace!r} of run {run.id} ended with no data")
    return Reading(data, first, last)


def check(reading: Reading, expected: bytes, what: str) -> None:
    """Raise :class:`WrongResultError` unless ``reading`` holds exactly ``expected``."""
    if reading.data == expected:
        return
    got = len(reading.data)
    where = next(
        (i for i, (a, b) in enumerate(zip(reading.data, expected, strict=False)) if a != b),
        min(got, len(expected)),
    )
    raise WrongResultError(
        f"{what}: got {got:,} bytes, expected {len(expected):,}; first difference at byte {where:,}"
    )


_runs = 0


def _key(prefix: str) -> str:
    global _runs
    _runs += 1
    return f"{prefix}-{_runs}"


async def measure_ttfb(rt: Runtime, samples: int) -> tuple[list[float], ...]:
    """Per run, seconds from calling ``rt.start()`` to: the reader holding the first chunk;
    ``start()`` returning; the step's write of that chunk."""
    ttfb: list[float] = []
    returned: list[float] = []
    written: list[float] = []
    for index in range(WARMUP + samples):
        key = _key("first")
        start = time.perf_counter()
        run = await rt.start(stream_first_byte, key, "first")
        started = time.perf_counter()
        reading = await read_all(run, "first")
        await run.result()
        check(reading, b"x", "ttfb stream")
        (first_write,) = take_first_writes(key)
        if index >= WARMUP:
            ttfb.append(reading.first - start)
            returned.append(started - start)
            written.append(first_write - start)
    return ttfb, returned, written


async def measure_throughput(rt: Runtime, sizes: StreamSizes) -> list[float]:
    """Seconds from the first write to the reader holding every byte, per run."""
    expected = pattern(sizes.total)
    out: list[float] = []
    for index in range(1 + sizes.repeat):
        key = _key("bulk")
        run = await rt.start(stream_bulk, key, sizes.total, sizes.chunk)
        reading = await read_all(run, "bulk")
        await run.result()
        check(reading, expected, "throughput stream")
        (first_write,) = take_first_writes(key)
        if index >= 1:
            out.append(reading.last - first_write)
    return out


async def measure_parallel(rt: Runtime, sizes: StreamSizes) -> tuple[list[float], list[float]]:
    """Per run: seconds from the first write to the last reader done, and from start."""
    expected = pattern(sizes.total)
    spans: list[float] = []
    walls: list[float] = []
    for index in range(1 + sizes.repeat):
        key = _key("parallel")
        start = time.perf_counter()
        run = await rt.start(stream_parallel, key, sizes.streams, sizes.total, sizes.chunk)
        readings = await asyncio.gather(*[read_all(run, f"p{i}") for i in range(sizes.streams)])
        await run.result()
        for i, reading in enumerate(readings):
            check(reading, expected, f"parallel stream p{i}")
        first_writes = take_first_writes(key)
        if len(first_writes) != sizes.streams:
            raise WrongResultError(f"{len(first_writes)} of {sizes.streams} writers ran")
        done = max(r.last for r in readings)
        if index >= 1:
            spans.append(done - min(first_writes))
            walls.append(done - start)
    return spans, walls


async def measure_pipeline(rt: Runtime, sizes: StreamSizes) -> list[float]:
    """Seconds from ``rt.start()`` to the last byte of the last stage at the reader."""
    expected = pipeline_output(sizes.total, sizes.stages)
    last = f"s{sizes.stages}"
    out: list[float] = []
    for index in range(1 + sizes.repeat):
        key = _key("pipeline")
        start = time.perf_counter()
        run = await rt.start(stream_pipeline, key, sizes.stages, sizes.total, sizes.chunk)
        reading = await read_all(run, last)
        result = await run.result()
        check(reading, expected, f"pipeline stream {last}")
        take_first_writes(key)
        if result != sizes.total:
            raise WrongResultError(f"the last transform passed {result:,} of {sizes.total:,} B")
        if index >= 1:
            out.append(reading.last - start)
    return out


@asynccontextmanager
async def _runtime(kind: str, postgres: str | None, name: str) -> AsyncIterator[Runtime]:
    """A Runtime on a fresh store of ``kind`` for one scenario, which may take so long."""
    async with (
        fresh_store_url(kind, postgres) as url,
        Runtime(store=url, workflows=STREAM_WORKFLOWS) as rt,
    ):
        try:
            async with asyncio.timeout(SCENARIO_TIMEOUT):
                yield rt
        except TimeoutError:
            raise TimeoutError(f"{name} took over {SCENARIO_TIMEOUT:.0f} s (a hang?)") from None
    say(f"streams {kind} {name}: done")


def chosen(only: Collection[str] | None) -> frozenset[str]:
    """The scenarios to run: ``only``, or all of them; ``ValueError`` on an unknown name."""
    unknown = sorted(set(only or ()) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown streams scenario(s) {unknown}: use {', '.join(SCENARIOS)}")
    return frozenset(SCENARIOS if only is None else only)


async def measure(
    kind: str, postgres: str | None, sizes: StreamSizes, only: Collection[str] | None = None
) -> StreamRaw:
    """Every streams scenario (or those in ``only``) on ``kind``, each on a fresh store with
    its own Runtime."""
    wanted, raw = chosen(only), StreamRaw()
    if "ttfb" in wanted:
        async with _runtime(kind, postgres, "ttfb") as rt:
            raw.ttfb, raw.ttfb_returned, raw.ttfb_written = await measure_ttfb(
                rt, sizes.ttfb_samples
            )
    if "throughput" in wanted:
        async with _runtime(kind, postgres, "throughput") as rt:
            raw.throughput = await measure_throughput(rt, sizes)
    if "parallel" in wanted:
        async with _runtime(kind, postgres, "parallel") as rt:
            raw.parallel, raw.parallel_wall = await measure_parallel(rt, sizes)
    if "pipeline" in wanted:
        async with _runtime(kind, postgres, "pipeline") as rt:
            raw.pipeline = await measure_pipeline(rt, sizes)
    return raw


def _size_text(nbytes: int) -> str:
    if nbytes % MIB == 0:
        return f"{nbytes // MIB} MiB"
    return f"{nbytes // 1024} KiB"


def rounds_of(sizes: StreamSizes, count: int) -> list[StreamSizes]:
    """``sizes`` with their samples shared over up to ``count`` rounds (as many as both the
    repetitions and the first-byte samples allow)."""
    count = min(count, sizes.repeat, sizes.ttfb_samples)
    repeats, samples = shares(sizes.repeat, count), shares(sizes.ttfb_samples, count)
    return [
        dataclasses.replace(sizes, repeat=r, ttfb_samples=t)
        for r, t in zip(repeats, samples, strict=True)
    ]


def summarize(
    kind: str, raw: StreamRaw, sizes: StreamSizes, engine: str = "actorflow"
) -> list[Row]:
    """Rows from the raw samples of one store: one per scenario that ran, of ``engine``
    (actorflow's with their targets; a peer's without: the targets are ours)."""
    rows = _rows(kind, raw, sizes)
    for row in rows:
        row.engine = engine
        if engine != "actorflow":
            row.target = None
    return rows


def _rows(kind: str, raw: StreamRaw, sizes: StreamSizes) -> list[Row]:
    each = f"{_size_text(sizes.total)} in {_size_text(sizes.chunk)} chunks"
    rows: list[Row] = []
    if raw.ttfb:
        rows.append(_ttfb_row(kind, raw))
        rows.append(latency_row(kind, raw))
    if raw.throughput:
        rows.append(
            rate_row(
                SUITE,
                kind,
                "throughput",
                sizes.total,
                sizes.total,
                raw.throughput,
                f"{each}; first write → last byte at the reader: "
                f"{stats.median(raw.throughput) * 1000:.1f} ms",
            )
        )
    if raw.parallel:
        rows.append(_parallel_row(kind, raw, sizes, each))
    if raw.pipeline:
        rows.append(_pipeline_row(kind, raw, sizes, each))
    return rows


def _ttfb_row(kind: str, raw: StreamRaw) -> Row:
    return ms_row(
        SUITE,
        kind,
        "ttfb",
        None,
        raw.ttfb,
        TTFB_TARGET_MS.get(kind),
        f"start() → first chunk at the reader; start() returned at "
        f"{stats.median(raw.ttfb_returned) * 1000:.2f} ms, the step wrote at "
        f"{stats.median(raw.ttfb_written) * 1000:.2f} ms",
    )


def latency_row(kind: str, raw: StreamRaw) -> Row:
    """``stream_latency``: from the step writing the first chunk to the reader holding it."""
    if len(raw.ttfb) != len(raw.ttfb_written):
        raise ValueError(
            f"{len(raw.ttfb)} first-chunk readings but {len(raw.ttfb_written)} first writes"
        )
    gaps = [got - wrote for got, wrote in zip(raw.ttfb, raw.ttfb_written, strict=True)]
    return ms_row(
        SUITE,
        kind,
        "stream_latency",
        None,
        gaps,
        detail="the step writes a chunk → the reader has it",
    )


def ttfb_series(kind: str, raw: StreamRaw, engine: str = "actorflow") -> Series | None:
    """The ``ttfb`` samples in ms as a series (None if the scenario did not run)."""
    if not raw.ttfb:
        return None
    return Series(STREAMS_TTFB, kind, engine, "ms", [v * 1000 for v in raw.ttfb])


def _parallel_row(kind: str, raw: StreamRaw, sizes: StreamSizes, each: str) -> Row:
    moved = sizes.streams * sizes.total
    parallel = ms_row(
        SUITE,
        kind,
        "parallel",
        sizes.streams,
        raw.parallel,
        detail=f"{sizes.streams} streams x {each}: "
        f"{mib_per_s(moved, stats.median(raw.parallel)):.1f} MiB/s; "
        f"start() → all read {stats.median(raw.parallel_wall) * 1000:.1f} ms",
    )
    parallel.rate = mib_per_s(moved, stats.median(raw.parallel))
    return parallel


def _pipeline_row(kind: str, raw: StreamRaw, sizes: StreamSizes, each: str) -> Row:
    pipeline_goal = PIPELINE_TARGET_MS.get(kind) if sizes.total == MIB else None
    pipeline = ms_row(
        SUITE,
        kind,
        "pipeline",
        sizes.stages,
        raw.pipeline,
        pipeline_goal,
        f"{each} through {sizes.stages} transform steps: start() → last byte at the reader "
        f"({mib_per_s(sizes.total, stats.median(raw.pipeline)):.1f} MiB/s)",
    )
    pipeline.rate = mib_per_s(sizes.total, stats.median(raw.pipeline))
    return pipeline


ROUNDS = 3
"""Rounds the samples are split into when DBOS runs beside (one round without it)."""
COMPARED = ("ttfb", "stream_latency", "throughput", "parallel", "pipeline")
DBOS_MODE = (
    "steps writing with DBOS.write_stream_async / close_stream_async, readers "
    "DBOS.read_stream_async (polling_interval_sec=0.01), DBOS.start_workflow_async"
)
DBOS_NOTES = (
    "DBOS runs every streams scenario with its streams API: steps write with "
    "DBOS.write_stream_async and close with DBOS.close_stream_async; the readers (and the "
    "pipeline's transform steps) read with DBOS.read_stream_async, re-reading every 10 ms "
    "when no notification came (its default is 1 s; SQLite has no LISTEN/NOTIFY), as in the "
    "reference suite. DBOS has no memory store.",
    "With DBOS, the samples are split into up to 3 rounds taking turns (actorflow first in "
    "odd rounds, DBOS in even ones), each scenario on a fresh store or system database after "
    "its warm-up; ratio = actorflow/DBOS of the medians.",
)


@dataclass
class PeerStreams:
    """DBOS's side of one store: how to run a round, and the scenarios that failed."""

    env: PeerEnv
    kind: str
    postgres: str | None
    wanted: frozenset[str]
    failed: dict[str, str] = field(default_factory=dict)

    async def round(self, sizes: StreamSizes) -> StreamRaw:
        """One round of DBOS on every wanted scenario that has not failed yet."""
        scenarios = self.wanted - set(self.failed)
        if not scenarios:
            return StreamRaw()
        result = await run_dbos_streams(
            self.env, self.kind, self.postgres, scenarios, sizes, StreamRaw.fields()
        )
        for scenario, why in result.not_run.items():
            self.failed.setdefault(scenario, why)
        return StreamRaw(**result.raw)


async def measure_kind(
    kind: str,
    postgres: str | None,
    sizes: StreamSizes,
    only: Collection[str] | None,
    peer: PeerStreams | None,
) -> Turns[StreamRaw]:
    """Every round on ``kind``: actorflow's, and DBOS's in turn if ``peer`` is given."""

    async def ours(part: StreamSizes) -> StreamRaw:
        return await measure(kind, postgres, part, only)

    if peer is None:
        return Turns(ours=[await ours(sizes)])
    return await take_turns(f"streams {kind}", rounds_of(sizes, ROUNDS), ours, peer.round)


def add_peer(
    out: SuiteResult,
    kind: str,
    sizes: StreamSizes,
    ours: list[Row],
    turns: Turns[StreamRaw],
    peer: PeerStreams,
) -> None:
    """DBOS's rows, series and comparisons of ``kind`` into ``out``, or why not."""
    if not turns.peer_ran:
        out.skipped.append(f"{kind}: DBOS not run: {turns.failed or 'no round ran'}")
        return
    for scenario, why in sorted(peer.failed.items()):
        out.skipped.append(f"{kind}: DBOS {scenario} not run: {why}")
    theirs_raw = StreamRaw.joined(turns.theirs).without(peer.failed)
    theirs = summarize(kind, theirs_raw, sizes, engine="dbos")
    out.rows.extend(theirs)
    out.comparisons.extend(compare(ours, theirs, COMPARED))
    series = ttfb_series(kind, theirs_raw, engine="dbos")
    if series is not None:
        out.series.append(series)


async def run_streams_suite(
    plan: Plan,
    stores: Sequence[str],
    postgres: str | None,
    only: Collection[str] | None = None,
    peer: str | None = None,
) -> SuiteResult:
    """Measure every streams scenario (or those named in ``only``) on each store kind; with
    ``peer`` (``dbos``), DBOS too, in turns, on the stores it has."""
    wanted = chosen(only)
    out = SuiteResult(SUITE)
    sizes = StreamSizes.of(plan)
    out.notes.append(
        "Readers are run.stream() in the benchmark process, started when start() returns "
        f"(they read from index 0). SQLite with {sqlite_mode()}. For MiB/s rows, p95 is the "
        "rate of the p95 (slow-tail) repetition; each scenario drops one warm-up run."
    )
    env = await peer_env(out, "streams", DBOS_MODE) if peer is not None else None
    if env is not None:
        out.notes.extend(DBOS_NOTES)

    async def measure_one(kind: str) -> tuple[Turns[StreamRaw], PeerStreams | None]:
        theirs = None
        if env is not None and kind in PEER_STORE_KINDS:
            theirs = PeerStreams(env, kind, postgres, wanted)
        return await measure_kind(kind, postgres, sizes, only, theirs), theirs

    async for kind, (turns, theirs) in each_store("streams", stores, postgres, out, measure_one):
        ours_raw = StreamRaw.joined(turns.ours)
        ours = summarize(kind, ours_raw, sizes)
        out.rows.extend(ours)
        series = ttfb_series(kind, ours_raw)
        if series is not None:
            out.series.append(series)
        if env is not None and theirs is None:
            out.skipped.append(f"{kind}: DBOS has no {kind} store; actorflow only")
        elif theirs is not None:
            add_peer(out, kind, sizes, ours, turns, theirs)
    return out
