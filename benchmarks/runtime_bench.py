"""The ``runtime`` suite: what a workflow pays for durability, end to end, per store.

Scenarios, each on a fresh store with its own ``Runtime``:

* ``ttfs`` — from calling ``rt.start()`` to the first line of the first step's body;
* ``seq_gap`` — runs of n sequential no-op steps; the gap between the entries of
  consecutive step bodies (for n = 1, from the step body to the caller holding the result);
* ``seq_gap_big_input`` — the same runs at the plan's longest length, their workflow given an
  input of ``BIG_INPUT_BYTES`` it ignores, taking turns with the ``seq_gap`` runs of that
  length on the same store: the gap, and its ratio to ``seq_gap``'s (a run's row, written with
  every batch of its events, must not carry its input);
* ``seq_slope`` / ``seq_drift`` — for the longest run: the least-squares slope of the gap
  against the step index, and the gap near the end over the gap near step 10;
* ``gather`` — one run of n no-op steps under ``asyncio.gather``, start to result;
* ``one_step_runs`` — n one-step runs started together, all results awaited: runs/s;
* ``raw_floor`` — one raw durable write on the same kind of database (SQLite: BEGIN, INSERT,
  COMMIT with ``synchronous=FULL`` once its WAL has wrapped; PostgreSQL: an autocommit
  INSERT), measured before and after the scenarios: the time to first step and the
  sequential gap are reported as multiples of it.

A SQLite store's WAL file grows until its first checkpoint, and every commit until then pays
for the growth; each SQLite scenario therefore starts with a warm-up run of
``WAL_WARMUP_STEPS`` steps, so the numbers are those of a store in steady state.

Raw samples (:class:`RuntimeRaw`) are kept apart from their summary so the peer engine's
samples, measured by its own script, are summarized by the same code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from runtime import Runtime, WorkflowFunction

from . import stats
from .config import MIB, Plan
from .model import Row, Series, SuiteResult, Target
from .progress import say
from .rounds import split
from .store_bench import floor_row, raw_floor
from .stores import each_store, fresh_store_url, sqlite_mode
from .workflows import (
    WORKFLOWS,
    fan_out,
    first_step,
    one_step,
    sequential,
    sequential_big,
    take_stamps,
)

T = TypeVar("T")

SUITE = "runtime"
SCENARIOS = ("ttfs", "seq_gap", "seq_gap_big_input", "gather", "one_step_runs")
"""The scenarios a run can select (``seq_gap`` brings ``seq_slope`` and ``seq_drift``;
``seq_gap_big_input`` brings ``seq_gap`` at its length, what it is compared with; the raw floor
is always measured, as the others are reported against it)."""
TTFS_WARMUP = 3
EARLY_WINDOW = (5, 15)
"""Step indices whose gaps make the early window (the gap at step ~10)."""
LATE_WINDOW_STEPS = 10
"""The late window: the gaps of the last this-many steps (the gap at step ~1,000)."""
DRIFT_TOLERANCE = 0.10
BIG_INPUT_BYTES = MIB
"""The size of the ``seq_gap_big_input`` workflow's input (random bytes: no store can
compress them away)."""
BIG_INPUT_TOLERANCE = 0.10
"""How much slower than ``seq_gap``'s at the same length the big-input gap may be."""

WAL_WARMUP_STEPS = 1500
"""Steps run on a fresh SQLite store before it is measured (its WAL wraps a few times)."""
FLOOR_WARMUP = {"sqlite": 3000, "postgres": 200}
FLOOR_SAMPLES = 300

SEQ_TARGET_MS = {"memory": 0.07}
SEQ_FLOOR_MULTIPLE = {"sqlite": 2.5, "postgres": 1.6}
"""A sequential step's gap, at most this multiple of the raw floor."""
TTFS_FLOOR_MULTIPLE = {"sqlite": 3.0}
GATHER_TARGET_MS = {("sqlite", 50): 6.0, ("postgres", 50): 6.0}
RUNS_TARGET = {"memory": 3000.0, "sqlite": 2500.0, "postgres": 1500.0}


@dataclass
class RuntimeRaw:
    """Raw samples in seconds, by scenario and size, as JSON-friendly lists."""

    ttfs: list[float] = field(default_factory=list)
    seq_gaps: dict[int, list[list[float]]] = field(default_factory=dict)
    seq_tail: dict[int, list[float]] = field(default_factory=dict)
    seq_wall: dict[int, list[float]] = field(default_factory=dict)
    gather: dict[int, list[float]] = field(default_factory=dict)
    one_step: dict[int, list[float]] = field(default_factory=dict)
    floor: list[float] = field(default_factory=list)
    big_input: dict[int, list[list[float]]] = field(default_factory=dict)
    """The gaps of each ``seq_gap_big_input`` repetition, by length."""

    def to_json(self) -> dict[str, Any]:
        """A dict for ``json.dump`` (sizes become string keys)."""
        return {
            "ttfs": self.ttfs,
            "seq_gaps": {str(k): v for k, v in self.seq_gaps.items()},
            "seq_tail": {str(k): v for k, v in self.seq_tail.items()},
            "seq_wall": {str(k): v for k, v in self.seq_wall.items()},
            "gather": {str(k): v for k, v in self.gather.items()},
            "one_step": {str(k): v for k, v in self.one_step.items()},
            "floor": self.floor,
            "big_input": {str(k): v for k, v in self.big_input.items()},
        }

    def extend(self, other: RuntimeRaw) -> None:
        """Add ``other``'s samples to these (the rounds of one engine, in turn)."""
        self.ttfs += other.ttfs
        self.floor += other.floor
        _merge(self.seq_gaps, other.seq_gaps)
        _merge(self.seq_tail, other.seq_tail)
        _merge(self.seq_wall, other.seq_wall)
        _merge(self.gather, other.gather)
        _merge(self.one_step, other.one_step)
        _merge(self.big_input, other.big_input)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuntimeRaw:
        """The inverse of :meth:`to_json` (also reads the peer script's output)."""

        def sized(name: str) -> dict[int, Any]:
            return {int(k): v for k, v in dict(data.get(name, {})).items()}

        return cls(
            ttfs=[float(x) for x in data.get("ttfs", [])],
            seq_gaps=sized("seq_gaps"),
            seq_tail=sized("seq_tail"),
            seq_wall=sized("seq_wall"),
            gather=sized("gather"),
            one_step=sized("one_step"),
            floor=[float(x) for x in data.get("floor", [])],
            big_input=sized("big_input"),
        )


def _merge(mine: dict[int, list[T]], theirs: dict[int, list[T]]) -> None:
    for size, samples in theirs.items():
        mine.setdefault(size, []).extend(samples)


@dataclass(frozen=True)
class Scenarios:
    """Which runtime scenarios to run, at which sizes, how often."""

    ttfs_samples: int
    seq_lengths: tuple[int, ...]
    seq_repeat: int
    gather_sizes: tuple[int, ...]
    gather_repeat: int
    one_step_runs: int
    one_step_repeat: int
    big_input_length: int = 0
    """Steps per run of ``seq_gap_big_input`` (0: not run); one of ``seq_lengths``."""

    @classmethod
    def of(
        cls,
        plan: Plan,
        gather_sizes: Sequence[int] | None = None,
        only: Collection[str] | None = None,
    ) -> Scenarios:
        """The scenarios of ``plan`` (optionally with other gather sizes); with ``only``
        (names from ``SCENARIOS``), the others are left out: no samples, no sizes."""
        unknown = set(only or ()) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown runtime scenario(s): {', '.join(sorted(unknown))}")

        def wanted(name: str) -> bool:
            return only is None or name in only

        gathers = tuple(gather_sizes if gather_sizes is not None else plan.gather_sizes)
        big = plan.long_seq if wanted("seq_gap_big_input") else 0
        return cls(
            ttfs_samples=plan.ttfs_samples if wanted("ttfs") else 0,
            seq_lengths=plan.seq_lengths if wanted("seq_gap") else ((big,) if big else ()),
            seq_repeat=plan.seq_repeat,
            gather_sizes=gathers if wanted("gather") else (),
            gather_repeat=plan.gather_repeat,
            one_step_runs=plan.one_step_runs if wanted("one_step_runs") else 0,
            one_step_repeat=plan.one_step_repeat,
            big_input_length=big,
        )

    def rounds(self, count: int) -> list[Scenarios]:
        """The same samples split over up to ``count`` rounds (two engines take turns round by
        round, so drift hits both): every repetition count divided, the remainder spread over
        the first rounds; a round gets at least one repetition of each scenario."""
        count = max(1, min(count, self.seq_repeat, self.gather_repeat, self.one_step_repeat))
        ttfs, seq = split(self.ttfs_samples, count), split(self.seq_repeat, count)
        gather, one_step = split(self.gather_repeat, count), split(self.one_step_repeat, count)
        return [
            dataclasses.replace(
                self,
                ttfs_samples=ttfs[i],
                seq_repeat=seq[i],
                gather_repeat=gather[i],
                one_step_repeat=one_step[i],
            )
            for i in range(count)
        ]

    def to_json(self) -> dict[str, Any]:
        """The scenarios as a dict (what the peer script is told to run: the peers suite has
        no ``seq_gap_big_input``)."""
        return {
            "ttfs_samples": self.ttfs_samples,
            "seq_lengths": list(self.seq_lengths),
            "seq_repeat": self.seq_repeat,
            "gather_sizes": list(self.gather_sizes),
            "gather_repeat": self.gather_repeat,
            "one_step_runs": self.one_step_runs,
            "one_step_repeat": self.one_step_repeat,
        }


# -- measuring actorflow ---------------------------------------------------------------------


class _Keys:
    """Unique stamp keys, one per run."""

    def __init__(self) -> None:
        self._n = 0

    def __call__(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self._n}"


_key = _Keys()


async def measure_ttfs(rt: Runtime, samples: int) -> list[float]:
    """Seconds from ``rt.start()`` to the first step body's first line, per run."""
    out: list[float] = []
    for index in range(TTFS_WARMUP + samples):
        key = _key("ttfs")
        start = time.perf_counter()
        run = await rt.start(first_step, key)
        await run.result()
        stamps = take_stamps(key)
        if index >= TTFS_WARMUP:
            out.append(stamps[0] - start)
    return out


async def measure_sequential(
    rt: Runtime,
    n: int,
    repeat: int,
    workflow: WorkflowFunction[Any, Any] = sequential,
    args: Sequence[Any] = (),
) -> tuple[list[list[float]], list[float], list[float]]:
    """Per repetition: the gaps between step bodies, the last body to result, the wall time.

    ``workflow`` is called as ``workflow(key, n, *args)`` and must run ``n`` marked steps."""
    warm = _key("seq-warm")
    await (await rt.start(workflow, warm, min(n, 10), *args)).result()
    take_stamps(warm)
    gaps: list[list[float]] = []
    tails: list[float] = []
    walls: list[float] = []
    for _ in range(repeat):
        key = _key("seq")
        start = time.perf_counter()
        run = await rt.start(workflow, key, n, *args)
        await run.result()
        end = time.perf_counter()
        stamps = take_stamps(key)
        if len(stamps) != n:
            raise RuntimeError(f"expected {n} step bodies, {len(stamps)} ran")
        gaps.append(stats.diffs(stamps))
        tails.append(end - stamps[-1])
        walls.append(end - start)
    return gaps, tails, walls


def big_input() -> bytes:
    """The ``seq_gap_big_input`` workflow's input: ``BIG_INPUT_BYTES`` of fixed random bytes."""
    return random.Random(BIG_INPUT_BYTES).randbytes(BIG_INPUT_BYTES)


async def measure_with_big_input(
    rt: Runtime, n: int, repeat: int
) -> tuple[tuple[list[list[float]], list[float], list[float]], list[list[float]]]:
    """:func:`measure_sequential` of ``n`` steps without and with the big input, taking turns
    repetition by repetition (so drift hits both); the first's samples, the second's gaps."""
    blob = big_input()
    gaps: list[list[float]] = []
    tails: list[float] = []
    walls: list[float] = []
    big: list[list[float]] = []
    for _ in range(repeat):
        plain = await measure_sequential(rt, n, 1)
        gaps += plain[0]
        tails += plain[1]
        walls += plain[2]
        big += (await measure_sequential(rt, n, 1, sequential_big, (blob,)))[0]
    return (gaps, tails, walls), big


async def measure_gather(rt: Runtime, n: int, repeat: int) -> list[float]:
    """Seconds from start to result of a run gathering ``n`` no-op steps."""
    await (await rt.start(fan_out, n)).result()
    out: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        run = await rt.start(fan_out, n)
        await run.result()
        out.append(time.perf_counter() - start)
    return out


async def measure_one_step_runs(rt: Runtime, n: int, repeat: int) -> list[float]:
    """Seconds to start ``n`` one-step runs together and collect every result."""
    warm = await asyncio.gather(*[rt.start(one_step, i) for i in range(min(n, 10))])
    await asyncio.gather(*[r.result() for r in warm])
    out: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        runs = await asyncio.gather(*[rt.start(one_step, i) for i in range(n)])
        await asyncio.gather(*[r.result() for r in runs])
        out.append(time.perf_counter() - start)
    return out


async def measure_floor(kind: str, postgres: str | None, samples: int) -> list[float]:
    """Seconds per raw durable write on ``kind`` after warming it up (none for memory)."""
    async with raw_floor(kind, postgres) as once:
        if once is None:
            return []
        for _ in range(FLOOR_WARMUP.get(kind, 0)):
            await once()
        return [await once() for _ in range(samples)]


@asynccontextmanager
async def _runtime(kind: str, postgres: str | None, name: str) -> AsyncIterator[Runtime]:
    """A Runtime on a fresh store of ``kind``, for one scenario (a SQLite one warmed up)."""
    async with (
        fresh_store_url(kind, postgres) as url,
        Runtime(store=url, workflows=WORKFLOWS) as rt,
    ):
        if kind == "sqlite":
            warm = _key("wal-warm")
            await (await rt.start(sequential, warm, WAL_WARMUP_STEPS)).result()
            take_stamps(warm)
        yield rt
    say(f"runtime {kind} {name}: done")


async def measure_actorflow(kind: str, postgres: str | None, scenarios: Scenarios) -> RuntimeRaw:
    """Every scenario on ``kind``, each on a fresh store with its own Runtime."""
    raw = RuntimeRaw()
    raw.floor = await measure_floor(kind, postgres, FLOOR_SAMPLES)
    if scenarios.ttfs_samples:
        async with _runtime(kind, postgres, "ttfs") as rt:
            raw.ttfs = await measure_ttfs(rt, scenarios.ttfs_samples)
    for n in scenarios.seq_lengths:
        if n == scenarios.big_input_length:
            async with _runtime(kind, postgres, f"seq n={n}, with and without input") as rt:
                plain, raw.big_input[n] = await measure_with_big_input(rt, n, scenarios.seq_repeat)
            gaps, tails, walls = plain
        else:
            async with _runtime(kind, postgres, f"seq n={n}") as rt:
                gaps, tails, walls = await measure_sequential(rt, n, scenarios.seq_repeat)
        raw.seq_gaps[n], raw.seq_tail[n], raw.seq_wall[n] = gaps, tails, walls
    for n in scenarios.gather_sizes:
        async with _runtime(kind, postgres, f"gather n={n}") as rt:
            raw.gather[n] = await measure_gather(rt, n, scenarios.gather_repeat)
    n = scenarios.one_step_runs
    if n:
        async with _runtime(kind, postgres, f"one-step runs n={n}") as rt:
            raw.one_step[n] = await measure_one_step_runs(rt, n, scenarios.one_step_repeat)
    raw.floor += await measure_floor(kind, postgres, FLOOR_SAMPLES)
    return raw


# -- summarizing -----------------------------------------------------------------------------


def _ms_row(
    suite: str, engine: str, kind: str, scenario: str, size: int | None, samples: Sequence[float]
) -> Row:
    return Row(
        suite=suite,
        store=kind,
        scenario=scenario,
        size=size,
        unit="ms",
        median=stats.median(samples) * 1000,
        p95=stats.p95(samples) * 1000,
        samples=len(samples),
        engine=engine,
        spread=stats.spread(samples),
        p99=stats.scaled(stats.p99(samples), 1000),
    )


def drift_windows(gaps: Sequence[float]) -> tuple[list[float], list[float]]:
    """The early and late windows of a run's gaps (``gaps[j-1]`` is the gap before step j)."""
    n = len(gaps) + 1
    lo, hi = EARLY_WINDOW
    early = [gaps[j - 1] for j in range(lo, hi + 1) if 1 <= j <= n - 1]
    late = [gaps[j - 1] for j in range(max(1, n - LATE_WINDOW_STEPS), n)]
    return early, late


def summarize(
    kind: str, raw: RuntimeRaw, suite: str = SUITE, engine: str = "actorflow"
) -> list[Row]:
    """Rows (with the targets of actorflow's stores) from raw runtime samples."""
    targets = engine == "actorflow"
    rows: list[Row] = []
    floor_ms = stats.median(raw.floor) * 1000 if raw.floor else None
    if raw.floor:
        rows.append(floor_row(kind, raw.floor, suite))
        rows[-1].engine = engine
    if raw.ttfs:
        row = _ms_row(suite, engine, kind, "ttfs", None, raw.ttfs)
        _against_floor(row, floor_ms, TTFS_FLOOR_MULTIPLE.get(kind) if targets else None)
        rows.append(row)
    for n in sorted(raw.seq_gaps):
        pooled = [g for rep in raw.seq_gaps[n] for g in rep]
        if n >= 2:
            row = _ms_row(suite, engine, kind, "seq_gap", n, pooled)
        else:
            row = _ms_row(suite, engine, kind, "seq_gap", n, raw.seq_tail[n])
            row.extra["measured"] = "step body → result received (no next step)"
        row.extra["per_step_wall_ms"] = stats.median(raw.seq_wall[n]) * 1000 / n
        if n >= 2:
            _against_floor(row, floor_ms, SEQ_FLOOR_MULTIPLE.get(kind) if targets else None)
        if targets and n >= 2 and kind in SEQ_TARGET_MS:
            goal = SEQ_TARGET_MS[kind]
            row.target = Target("<=", goal, "median", f"≤ {goal} ms/step")
        rows.append(row)
    for n in sorted(raw.big_input):
        base = raw.seq_gaps.get(n)
        rows.append(big_input_row(suite, engine, kind, n, raw.big_input[n], base, targets))
    longest = max((n for n in raw.seq_gaps if n >= 2 * EARLY_WINDOW[1]), default=None)
    if longest is not None:
        rows.extend(_growth_rows(suite, engine, kind, longest, raw.seq_gaps[longest], targets))
    for n in sorted(raw.gather):
        row = _ms_row(suite, engine, kind, "gather", n, raw.gather[n])
        goal_ms = GATHER_TARGET_MS.get((kind, n))
        if targets and goal_ms is not None:
            row.target = Target("<=", goal_ms, "median", f"≤ {goal_ms:g} ms")
        rows.append(row)
    for n in sorted(raw.one_step):
        walls = raw.one_step[n]
        row = Row(
            suite=suite,
            store=kind,
            scenario="one_step_runs",
            size=n,
            unit="runs/s",
            median=n / stats.median(walls),
            p95=n / stats.p95(walls),
            samples=len(walls),
            engine=engine,
        )
        row.rate = row.median
        slow = stats.p99(walls)
        row.p99 = None if slow is None else n / slow
        row.extra["wall_median_ms"] = stats.median(walls) * 1000
        if targets and kind in RUNS_TARGET:
            row.target = Target(
                ">=", RUNS_TARGET[kind], "rate", f"≥ {RUNS_TARGET[kind]:,.0f} runs/s"
            )
        rows.append(row)
    return rows


def big_input_row(
    suite: str,
    engine: str,
    kind: str,
    n: int,
    reps: Sequence[Sequence[float]],
    baseline: Sequence[Sequence[float]] | None,
    targets: bool = True,
) -> Row:
    """The ``seq_gap_big_input`` row: the pooled gaps of ``reps`` (seconds), as a ratio to the
    median of the ``baseline`` ``seq_gap`` repetitions at the same length (none: no ratio,
    no target), with the target ``≤ 1.1x`` if ``targets`` (faster is no miss: the input
    must not cost, not make steps slower or faster)."""
    row = _ms_row(suite, engine, kind, "seq_gap_big_input", n, [g for r in reps for g in r])
    row.extra["input_bytes"] = BIG_INPUT_BYTES
    size = f"{BIG_INPUT_BYTES / MIB:g} MiB input"
    pooled = [g for r in baseline or () for g in r]
    if not pooled:
        row.extra["detail"] = f"{size}; no seq_gap at n={n} to compare with"
        return row
    base_ms = stats.median(pooled) * 1000
    row.ratio = row.median / base_ms
    row.extra["seq_gap_median_ms"] = base_ms
    row.extra["detail"] = f"{size}; {row.ratio:.2f}x seq_gap at n={n} ({base_ms:.3g} ms)"
    if targets:
        most = 1 + BIG_INPUT_TOLERANCE
        row.target = Target("<=", most, "ratio", f"≤ {most:g}x seq_gap")
    return row


def stso_series(kind: str, raw: RuntimeRaw, engine: str = "actorflow") -> Series | None:
    """STSO, the gap by step index of the longest sequential run: the median over the
    repetitions of the gap before step j (ms), for j = 1 … n-1; None without one."""
    longest = max((n for n in raw.seq_gaps if n >= 2), default=None)
    if longest is None:
        return None
    per_index = stats.pointwise_median(raw.seq_gaps[longest])
    return Series(
        kind="stso",
        store=kind,
        engine=engine,
        unit="ms",
        y=[g * 1000 for g in per_index],
        x=[float(j) for j in range(1, longest)],
    )


def _against_floor(row: Row, floor_ms: float | None, multiple: float | None) -> None:
    """Give ``row`` its multiple of the raw floor, and a target on it if ``multiple``."""
    if floor_ms is None:
        return
    row.ratio = row.median / floor_ms
    row.extra["floor_median_ms"] = floor_ms
    if multiple is not None:
        row.target = Target("<=", multiple, "ratio", f"≤ {multiple:g}x floor")


def _growth_rows(
    suite: str, engine: str, kind: str, n: int, reps: list[list[float]], targets: bool
) -> list[Row]:
    per_index = stats.pointwise_median(reps)
    xs = [float(j) for j in range(1, n)]
    slope = stats.slope(xs, per_index)
    typical = stats.median(per_index)
    slope_row = Row(
        suite=suite,
        store=kind,
        scenario="seq_slope",
        size=n,
        unit="µs/1k steps",
        median=slope * 1e9,
        p95=None,
        samples=len(reps),
        engine=engine,
    )
    slope_row.extra["growth_over_run_pct"] = slope * (n - 1) / typical * 100
    early, late = drift_windows(per_index)
    early_ms, late_ms = stats.median(early) * 1000, stats.median(late) * 1000
    lo, hi = EARLY_WINDOW
    drift_row = Row(
        suite=suite,
        store=kind,
        scenario="seq_drift",
        size=n,
        unit="late/early",
        median=late_ms / early_ms,
        p95=None,
        samples=len(reps),
        engine=engine,
    )
    drift_row.ratio = drift_row.median
    drift_row.extra["early_window"] = f"steps {lo}-{hi}"
    drift_row.extra["late_window"] = f"steps {n - LATE_WINDOW_STEPS}-{n - 1}"
    drift_row.extra["early_ms"] = early_ms
    drift_row.extra["late_ms"] = late_ms
    if targets:
        drift_row.target = Target("within", DRIFT_TOLERANCE, "median", "within ±10 %")
    return [slope_row, drift_row]


async def run_runtime_suite(
    plan: Plan, stores: Sequence[str], postgres: str | None, only: Collection[str] | None = None
) -> tuple[SuiteResult, dict[str, RuntimeRaw]]:
    """Measure every runtime scenario (or those named in ``only``) on each store kind; the
    rows and the raw samples."""
    out = SuiteResult(SUITE)
    raws: dict[str, RuntimeRaw] = {}
    scenarios = Scenarios.of(plan, only=only)
    out.notes.append(
        f"Defaults of Runtime (max_concurrent_steps=100); SQLite with {sqlite_mode()}. "
        "seq_gap for n=1 is the step body → result received (there is no next step)."
    )
    out.notes.append(
        "seq_gap pools the gaps of every repetition; seq_slope and seq_drift use the median "
        "gap at each step index over the repetitions. For runs/s rows, p95 is the rate of the "
        "p95 (slow-tail) repetition."
    )

    async def measure(kind: str) -> RuntimeRaw:
        return await measure_actorflow(kind, postgres, scenarios)

    async for kind, raw in each_store("runtime", stores, postgres, out, measure):
        raws[kind] = raw
        out.rows.extend(summarize(kind, raw))
        curve = stso_series(kind, raw)
        if curve is not None:
            out.series.append(curve)
    return out, raws
