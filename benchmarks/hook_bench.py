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

The samples of each store are taken in up to :data:`~benchmarks.peers.suite.ROUNDS` rounds
(:func:`benchmarks.rounds.shares`), each scenario on a fresh store every round, and pooled.
With a peer (``--peers dbos``), DBOS takes its turn after ours in every round, scenario by
scenario, on SQLite and PostgreSQL (:mod:`benchmarks.peers.hooks_peer`), so drift hits both: a
workflow parked in ``DBOS.recv_async`` woken by ``DBOS.send_async`` (in-process) or
``DBOSClient.send_async`` (another process); its samples are summarized by :func:`summarize`
and compared ours/DBOS. A scenario DBOS fails in any round is reported as not run, with why.
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
from .config import PEER_STORE_KINDS, Plan
from .hook_workflows import HOOK_WORKFLOWS, hook_then_step, take_stamps
from .model import Row, SuiteResult, WrongResultError
from .peers.hooks_peer import run_dbos_hooks
from .peers.suite import ROUNDS, compare
from .peers.turns import peer_env
from .peers.venv import PeerEnv, PeerUnavailable
from .progress import say
from .rounds import shares, split
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
COMPARED = ("resume", "resume_workflow", "resume_xproc", "resume_workflow_xproc")
DBOS_SQLITE_SAMPLES = 50
"""At most this many DBOS samples a scenario on SQLite, where a thread polling once a second
wakes its recv waiter: a sample costs a second, and its tail is that polling's."""
DBOS_NOTES = (
    "DBOS: a workflow parked in DBOS.recv_async(topic), woken by DBOS.send_async from the same "
    "app (resume rows) or DBOSClient.send_async from another process (*_xproc rows), on a "
    "fresh system database per scenario and round, DBOS defaults otherwise; it waits until the "
    "recv waiter is registered, and 5 ms more, before sending. In every round, each scenario "
    "runs its share of the samples on actorflow, then on DBOS, so drift hits both.",
    "DBOS on SQLite has no LISTEN/NOTIFY: a recv waiter is woken by its notification listener "
    "thread, which polls the system database every notification_listener_polling_interval_sec "
    "(1.0 s by default, kept), so its SQLite rows measure that polling (and take at most "
    f"{DBOS_SQLITE_SAMPLES} samples, a second each); on PostgreSQL a trigger's NOTIFY wakes it.",
)


@dataclass
class HookSamples:
    """Seconds from calling ``resume_hook()`` to each moment, one entry per sample."""

    to_step: list[float] = field(default_factory=list)
    to_workflow: list[float] = field(default_factory=list)
    call: list[float] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> HookSamples:
        """Samples from a peer script's JSON (``to_step``, ``to_workflow``, ``call``)."""
        try:
            return cls(
                to_step=[float(x) for x in data["to_step"]],
                to_workflow=[float(x) for x in data["to_workflow"]],
                call=[float(x) for x in data["call"]],
            )
        except KeyError as exc:
            raise ValueError(f"hook samples without {exc.args[0]!r}") from None

    def extend(self, other: HookSamples) -> None:
        """Add ``other``'s samples (another round) to these."""
        self.to_step += other.to_step
        self.to_workflow += other.to_workflow
        self.call += other.call


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


def summarize(
    kind: str, samples: HookSamples, across: bool, engine: str = "actorflow"
) -> list[Row]:
    """The two rows of one store, in-process or across processes, of ``engine`` (a peer's
    rows have no target: the targets are actorflow's)."""
    suffix = "_xproc" if across else ""
    if engine == "actorflow":
        sent, woke = "resume_hook()", "`await hook`"
        caller = f"{'a client process' if across else 'the same runtime'}'s {sent}"
    else:
        sent, woke = "send_async()", "`await DBOS.recv_async()`"
        caller = "a DBOSClient's send_async()" if across else "the same app's DBOS.send_async()"
    call = f"{caller} returned after {stats.median(samples.call) * 1000:.2f} ms"
    rows = [
        ms_row(
            SUITE,
            kind,
            f"resume{suffix}",
            None,
            samples.to_step,
            XPROC_TARGET_MS if across else TARGET_MS,
            f"{sent} → body of the step after the hook; {call}",
        ),
        ms_row(
            SUITE,
            kind,
            f"resume_workflow{suffix}",
            None,
            samples.to_workflow,
            detail=f"{sent} → workflow code after {woke}",
        ),
    ]
    for row in rows:
        row.engine = engine
        if engine != "actorflow":
            row.target = None
    return rows


def chosen(only: Collection[str] | None) -> frozenset[str]:
    """The scenarios to run: ``only``, or both; ``ValueError`` on an unknown name."""
    unknown = sorted(set(only or ()) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown hooks scenario(s) {unknown}: use {', '.join(SCENARIOS)}")
    return frozenset(SCENARIOS if only is None else only)


async def _peer(out: SuiteResult) -> PeerEnv | None:
    """DBOS's venv, with the suite's peer metadata and notes; None (and why) if unavailable."""
    mode = "async workflow parked in DBOS.recv_async; DBOS.send_async, DBOSClient.send_async"
    env = await peer_env(out, "hooks", mode)
    if env is not None:
        out.notes.extend(DBOS_NOTES)
    return env


def scenarios_on(kind: str, wanted: Collection[str]) -> list[str]:
    """The scenarios run on ``kind``, by both engines: those wanted, across processes on
    PostgreSQL only."""
    return [s for s in SCENARIOS if s in wanted and (s == "resume" or kind == "postgres")]


async def measure_actorflow(
    kind: str, postgres: str | None, scenario: str, samples: int
) -> HookSamples:
    """``samples`` of ``scenario`` (after ``WARMUP``) on a fresh store of ``kind``."""
    if scenario == "resume":
        async with _scenario(kind, postgres, "in-process") as (_, rt):
            return await measure_in_process(rt, samples)
    async with _scenario(kind, postgres, "across processes") as (url, rt):
        return await measure_cross_process(rt, url, samples)


@dataclass
class DbosTurns:
    """DBOS's samples on one store, taken a turn at a time (a scenario's share of a round).

    A scenario DBOS fails (not run by its script, or samples missing) gets no later turn and
    no row, and so does every scenario once the script itself fails (``broken``): partial
    samples would lean on the rounds that ran. What failed, and why, is in :attr:`not_run`.
    """

    env: PeerEnv
    kind: str
    postgres: str | None
    samples: dict[str, HookSamples] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    broken: str | None = None

    async def turn(self, scenario: str, count: int, when: str) -> None:
        """Measure ``count`` samples of ``scenario`` (``when``: the round, for the reason)."""
        if self.broken is not None:
            self.not_run.setdefault(scenario, self.broken)
            self.samples.pop(scenario, None)
            return
        if scenario in self.not_run:
            return
        say(f"hooks {self.kind} {scenario}: {when}, DBOS")
        try:
            result = await run_dbos_hooks(
                self.env, self.kind, self.postgres, [scenario], count, WARMUP
            )
        except (PeerUnavailable, OSError, ValueError) as exc:
            self.broken = f"{when}: {exc}"
            self._fail(scenario, self.broken)
            return
        if scenario in result.not_run or scenario not in result.raw:
            why = result.not_run.get(scenario, "the DBOS script returned no samples")
            self._fail(scenario, f"{when}: {why}")
            return
        try:
            got = HookSamples.from_json(result.raw[scenario])
        except ValueError as exc:
            self._fail(scenario, f"{when}: {exc}")
            return
        self.samples.setdefault(scenario, HookSamples()).extend(got)

    def _fail(self, scenario: str, why: str) -> None:
        self.not_run[scenario] = why
        self.samples.pop(scenario, None)
        say(f"hooks {self.kind} DBOS {scenario} failed: {why}")

    def report(self, out: SuiteResult, ours: dict[str, list[Row]]) -> None:
        """DBOS's rows, and ours/DBOS beside ``ours`` (rows by scenario), into ``out``; what
        it could not run into ``out.skipped`` with why, never as a number."""
        for scenario in SCENARIOS:
            if scenario in self.not_run:
                out.skipped.append(
                    f"{self.kind}: DBOS {scenario} not run: {self.not_run[scenario]}"
                )
            elif scenario in self.samples:
                across = scenario == "resume_xproc"
                theirs = summarize(self.kind, self.samples[scenario], across, engine="dbos")
                out.rows.extend(theirs)
                out.comparisons.extend(compare(ours.get(scenario, []), theirs, COMPARED))


def dbos_samples(kind: str, samples: int) -> int:
    """DBOS's samples a scenario on ``kind``: ``samples``, at most :data:`DBOS_SQLITE_SAMPLES`
    on SQLite."""
    return min(samples, DBOS_SQLITE_SAMPLES) if kind == "sqlite" else samples


async def measure_kind(
    out: SuiteResult,
    kind: str,
    postgres: str | None,
    plan: Plan,
    wanted: Collection[str],
    dbos: DbosTurns | None = None,
) -> None:
    """Every scenario of ``wanted`` on ``kind`` in rounds: in each, every scenario takes its
    share of the samples on actorflow, then (with ``dbos``) on DBOS; the pooled samples'
    rows and comparisons into ``out``."""
    scenarios = scenarios_on(kind, wanted)
    ours = {scenario: HookSamples() for scenario in scenarios}
    counts = shares(plan.hook_samples, ROUNDS)
    theirs = split(dbos_samples(kind, plan.hook_samples), len(counts))
    for number, (count, their_count) in enumerate(zip(counts, theirs, strict=True), start=1):
        when = f"round {number} of {len(counts)}"
        for scenario in scenarios:
            say(f"hooks {kind} {scenario}: {when}, actorflow")
            ours[scenario].extend(await measure_actorflow(kind, postgres, scenario, count))
            if dbos is not None and their_count:
                await dbos.turn(scenario, their_count, when)
    rows: dict[str, list[Row]] = {}
    for scenario in scenarios:
        rows[scenario] = summarize(kind, ours[scenario], across=scenario == "resume_xproc")
        out.rows.extend(rows[scenario])
    if dbos is not None:
        dbos.report(out, rows)


async def run_hooks_suite(
    plan: Plan,
    stores: Sequence[str],
    postgres: str | None,
    only: Collection[str] | None = None,
    peer: str | None = None,
) -> SuiteResult:
    """Measure hook resume latency on each store kind (and across processes on PostgreSQL);
    with ``only``, just the scenarios it names; with ``peer`` (``dbos``), DBOS's equivalent
    beside it on SQLite and PostgreSQL, round for round."""
    wanted = chosen(only)
    out = SuiteResult(SUITE)
    out.notes.append(
        "Worker runtimes with the defaults (poll_interval 0.25 s on SQLite and PostgreSQL; "
        "across processes PostgreSQL wakes the worker with LISTEN/NOTIFY). *_xproc rows: the "
        "client is another process; latencies compare time.time() in the two processes."
    )
    out.notes.append(
        f"Samples are taken in up to {ROUNDS} rounds, each scenario on a fresh store every "
        f"round after {WARMUP} unrecorded resumes, and pooled."
    )
    env = None
    if peer is not None and any(k in PEER_STORE_KINDS for k in stores):
        env = await _peer(out)

    async def measure(kind: str) -> None:
        dbos = None
        if env is not None and kind in PEER_STORE_KINDS:
            dbos = DbosTurns(env, kind, postgres)
        elif peer is not None and kind not in PEER_STORE_KINDS:
            out.skipped.append(f"{kind}: DBOS not run: it has no {kind} store")
        await measure_kind(out, kind, postgres, plan, wanted, dbos)

    async for _ in each_store("hooks", stores, postgres, out, measure):
        pass
    if "postgres" not in stores and "resume_xproc" in wanted:
        out.skipped.append(f"{', '.join(stores)}: across processes: measured on PostgreSQL only")
    return out
