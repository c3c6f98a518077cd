"""The ``reference`` suite: the reference suite of an event-sourced workflow engine, per store.

Scenarios (see :mod:`benchmarks.reference_cases` for the sizes and the sleeps, and
:mod:`benchmarks.reference_workflows` for the workflows): no steps; one step; 10/25/50
sequential steps; ``asyncio.gather`` of 10/25/50 steps; a ``FIRST_COMPLETED`` race of
10/25/50 steps; 10/25/50 sequential and concurrent steps passing a 10 KB payload; a 50-chunk
stream copied to upper case by a second step; 1 MiB through 5 XOR transforms; 10 parallel
1 MiB streams checked by one step; 10 streams fanned out to 10 transforms and in to one
checking step. Scenarios whose reference steps sleep run ``asis`` (with those sleeps) and
``noop`` (without: the engine's own overhead).

Per run: the wall time (calling ``rt.start()`` → the result in hand, and for a stream every
byte at the reader), the workflow time (the run record's ``completed_at - created_at``) and,
for an as-written form, the overhead above its sleep floor. A run is repeated in rounds, each
on a fresh store running every case once; with DBOS, each of our rounds is followed by one
of DBOS's (:mod:`benchmarks.peers.reference_peer`), so drift hits both alike. A wrong result
is a :class:`~benchmarks.model.WrongResultError`, never a number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from runtime import Run, Runtime, WorkflowFunction

from .config import PEER_STORE_KINDS, Plan
from .model import Series, SuiteResult, WrongResultError
from .peers.reference_peer import DbosRounds
from .peers.turns import peer_env
from .peers.venv import PeerEnv
from .progress import say
from .reference_cases import (
    PAYLOAD_BYTES,
    STREAM_BYTES,
    STREAM_CHUNK,
    SUITE,
    TEXT_CHUNK_BYTES,
    Case,
    RefSamples,
    cases_of,
    compare,
    kept,
    rounds_of,
    runs_in_round,
    summarize,
)
from .reference_workflows import (
    REFERENCE_WORKFLOWS,
    WRITER_KEY,
    ref_fan_out_fan_in,
    ref_gather,
    ref_no_steps,
    ref_one_step,
    ref_parallel_streams,
    ref_payload_gather,
    ref_payload_sequential,
    ref_pipeline,
    ref_race,
    ref_sequential,
    ref_text_stream,
    text_stream,
)
from .stores import each_store, fresh_store_url, sqlite_mode
from .stream_bench import Reading, check, read_all
from .stream_workflows import pipeline_output, take_first_writes

ROUND_TIMEOUT = 600.0
Workflow = WorkflowFunction[Any, Any]


@dataclass
class Outcome:
    """What one run gave: its result, when it began and its wall time (``perf_counter``),
    and the reader's stream if it had one."""

    result: object
    begin: float
    wall: float
    reading: Reading | None = None


def expect(case: Case, got: object, want: object) -> None:
    """Raise :class:`WrongResultError` unless the run of ``case`` returned ``want``."""
    if got != want:
        raise WrongResultError(f"{case.name} n={case.size}: the run returned {got!r}, not {want!r}")


async def _plain(rt: Runtime, fn: Workflow, *args: object) -> tuple[Run, Outcome]:
    begin = time.perf_counter()
    run = await rt.start(fn, *args)
    result = await run.result()
    return run, Outcome(result, begin, time.perf_counter() - begin)


async def _read(rt: Runtime, fn: Workflow, namespace: str, *args: object) -> tuple[Run, Outcome]:
    """Start ``fn`` and read its stream ``namespace`` to the end at once (the reader starts
    when ``start()`` returns and reads from index 0)."""
    begin = time.perf_counter()
    run = await rt.start(fn, *args)
    reading, result = await asyncio.gather(read_all(run, namespace), run.result())
    return run, Outcome(result, begin, time.perf_counter() - begin, reading)


async def run_case(rt: Runtime, case: Case) -> tuple[Run, Outcome]:
    """Run ``case`` once on ``rt``, checking its result (and its stream)."""
    n, pause = case.size or 0, case.sleep_ms
    if case.scenario == "no_steps":
        run, out = await _plain(rt, ref_no_steps, 42)
        expect(case, out.result, 84)
    elif case.scenario == "one_step":
        run, out = await _plain(rt, ref_one_step, 100, pause)
        expect(case, out.result, 142)
    elif case.scenario in ("seq", "gather", "race"):
        fn: Workflow = {"seq": ref_sequential, "gather": ref_gather, "race": ref_race}[
            case.scenario
        ]
        run, out = await _plain(rt, fn, n, pause)
        expect(case, out.result, n)
    elif case.scenario == "payload_seq":
        run, out = await _plain(rt, ref_payload_sequential, n, PAYLOAD_BYTES)
        expect(case, out.result, PAYLOAD_BYTES)
    elif case.scenario == "payload_gather":
        run, out = await _plain(rt, ref_payload_gather, n, PAYLOAD_BYTES)
        expect(case, out.result, n)
    elif case.scenario == "stream":
        run, out = await _read(rt, ref_text_stream, "upper", n, TEXT_CHUNK_BYTES, pause)
        wanted = text_stream(n, TEXT_CHUNK_BYTES).upper()
        assert out.reading is not None
        check(out.reading, wanted, "upper-case stream")
        expect(case, out.result, len(wanted))
    elif case.scenario == "pipeline":
        run, out = await _read(rt, ref_pipeline, f"s{n}", n, STREAM_BYTES, STREAM_CHUNK)
        assert out.reading is not None
        check(out.reading, pipeline_output(STREAM_BYTES, n), f"pipeline stream s{n}")
        expect(case, out.result, STREAM_BYTES)
    elif case.scenario in ("parallel_streams", "fanout_streams"):
        fn = ref_parallel_streams if case.scenario == "parallel_streams" else ref_fan_out_fan_in
        run, out = await _plain(rt, fn, n, STREAM_BYTES, STREAM_CHUNK)
        expect(case, out.result, [n * STREAM_BYTES, n])
    else:
        raise ValueError(f"unknown reference scenario {case.scenario!r}")
    take_first_writes(WRITER_KEY)
    return run, out


async def measure_case(rt: Runtime, case: Case, into: RefSamples) -> None:
    """Run ``case`` once and add its samples to ``into``."""
    run, out = await run_case(rt, case)
    into.add(case, "wall", out.wall)
    info = await run.info()
    if info.completed_at is not None:
        into.add(case, "workflow", (info.completed_at - info.created_at).total_seconds())
    if case.scenario == "stream" and out.reading is not None:
        into.add(case, "ttfb", out.reading.first - out.begin)
        into.add(case, "slurp", out.reading.last - out.reading.first)


async def actorflow_round(rt: Runtime, cases: Sequence[Case]) -> RefSamples:
    """One round on ``rt``: every case once, in order."""
    raw = RefSamples()
    try:
        async with asyncio.timeout(ROUND_TIMEOUT):
            for case in cases:
                await measure_case(rt, case, raw)
    except TimeoutError:
        raise TimeoutError(f"a round took over {ROUND_TIMEOUT:.0f} s (a hang?)") from None
    return raw


Round = Callable[[Sequence[Case]], Awaitable[RefSamples]]


async def in_rounds(
    plan: Plan, cases: Sequence[Case], engines: Sequence[tuple[str, Round]]
) -> dict[str, RefSamples]:
    """Every round of ``plan``, each engine in turn within a round; the kept samples."""
    out = {name: RefSamples() for name, _ in engines}
    for index in range(rounds_of(plan)):
        these = [c for c in cases if runs_in_round(c, index, plan)]
        for name, one_round in engines:
            raw = await one_round(these)
            keep = RefSamples()
            for case in these:
                if kept(case, index, plan):
                    for metric, values in raw.samples.get(case.key, {}).items():
                        keep.samples.setdefault(case.key, {})[metric] = list(values)
            out[name].extend(keep)
        say(f"reference: round {index + 1}/{rounds_of(plan)} done")
    return out


@dataclass
class KindResult:
    """The kept samples of one store: ours, and DBOS's if it ran beside."""

    ours: RefSamples
    dbos: DbosRounds | None
    theirs: RefSamples | None


async def measure_kind(
    kind: str, postgres: str | None, plan: Plan, cases: Sequence[Case], env: PeerEnv | None
) -> KindResult:
    """Every round on a fresh store of ``kind`` (one for all rounds): ours, then DBOS's if
    ``env`` is given and ``kind`` is one of DBOS's stores."""
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(fresh_store_url(kind, postgres))
        rt = await stack.enter_async_context(Runtime(store=url, workflows=REFERENCE_WORKFLOWS))

        async def ours(these: Sequence[Case]) -> RefSamples:
            return await actorflow_round(rt, these)

        engines: list[tuple[str, Round]] = [("actorflow", ours)]
        dbos: DbosRounds | None = None
        if env is not None and kind in PEER_STORE_KINDS:
            dbos = await stack.enter_async_context(DbosRounds(env, kind, postgres))
            engines.append(("dbos", dbos))
        samples = await in_rounds(plan, cases, engines)
    return KindResult(samples["actorflow"], dbos, samples.get("dbos"))


def stream_ttfb(kind: str, engine: str, raw: RefSamples, cases: Sequence[Case]) -> Series | None:
    """The time-to-first-byte samples of the noop stream (else the as-written one), in ms."""
    streams = sorted((c for c in cases if c.scenario == "stream"), key=lambda c: c.form != "noop")
    for case in streams:
        values = raw.of(case, "ttfb")
        if values:
            return Series("stream_ttfb", kind, engine, "ms", [v * 1000 for v in values])
    return None


DBOS_MODE = (
    "async workflows and steps, DBOS.start_workflow_async, streams "
    "DBOS.write_stream_async / read_stream_async"
)


NOTES = (
    "Wall: start() → result in hand (for a stream: and every byte at the reader). Workflow "
    "time: the run record's completed_at - created_at. Overhead: wall - the sleeps on the "
    "critical path. asis: the reference suite's sleeps inside the steps; noop: none.",
    "Rounds: every case once per round, on one fresh store per store kind (the first "
    "round is a warm-up); the as-written forms run once, in the last round.",
)
DBOS_NOTES = (
    "With DBOS: each of our rounds is followed by one of DBOS's, in one DBOS process per "
    "store on a fresh system database; ratio = actorflow/DBOS of the medians (below 1: "
    "actorflow is faster). DBOS's workflow time is its status's updated_at - created_at, on "
    "PostgreSQL only (on SQLite DBOS keeps whole seconds). DBOS's stream readers re-read "
    "every 10 ms without a notification (its default is 1 s; SQLite has no LISTEN/NOTIFY). "
    "DBOS has no memory store.",
)


async def run_reference_suite(
    plan: Plan, stores: Sequence[str], postgres: str | None, peer: str | None = None
) -> SuiteResult:
    """Measure every reference case on each store kind; with ``peer`` (``dbos``), DBOS too,
    round for round, on the stores it has."""
    out = SuiteResult(SUITE)
    out.notes.extend(NOTES)
    out.notes.append(f"SQLite with {sqlite_mode()}.")
    cases = cases_of(plan)
    env = await peer_env(out, "reference", DBOS_MODE) if peer is not None else None
    if env is not None:
        out.notes.extend(DBOS_NOTES)

    async def measure(kind: str) -> KindResult:
        return await measure_kind(kind, postgres, plan, cases, env)

    async for kind, result in each_store(SUITE, stores, postgres, out, measure):
        ours = summarize(kind, result.ours, cases)
        out.rows.extend(ours)
        series = stream_ttfb(kind, "actorflow", result.ours, cases)
        out.series.extend([series] if series else [])
        if env is not None and kind not in PEER_STORE_KINDS:
            out.skipped.append(f"{kind}: DBOS has no {kind} store; actorflow only")
        if result.dbos is None or result.theirs is None:
            continue
        out.skipped.extend(result.dbos.skipped())
        theirs = summarize(kind, result.theirs, cases, engine="dbos")
        out.rows.extend(theirs)
        out.comparisons.extend(compare(ours, theirs))
        series = stream_ttfb(kind, "dbos", result.theirs, cases)
        out.series.extend([series] if series else [])
    return out
