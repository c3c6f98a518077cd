"""The ``store`` suite: ``create_batch`` latency and throughput beside the raw write floor.

For each store and batch size a fresh store gets realistic traffic: the step events
(``step_created``, ``step_started``, ``step_completed``) of several running runs, guarded by
``if_last_event_id`` as the runtime writes them. Each timed ``create_batch`` call is
interleaved with one raw floor write on the same kind of database, so machine noise hits
both alike: for SQLite one bare ``INSERT`` + ``COMMIT`` into a scratch table of a separate
file with the store's pragmas (WAL, synchronous=FULL); for PostgreSQL one bare autocommit
``INSERT`` into a table of a scratch schema on the same database (dropped afterwards).
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from persistence import NewEvent, Store, codec, open_store
from persistence import events as ev
from persistence.ids import RUN, STEP, command_id, new_id

from . import stats
from .config import Plan
from .model import Row, SuiteResult, Target
from .progress import say
from .stores import (
    drop_schemas,
    each_store,
    fresh_store_url,
    postgres_dsn,
    scratch_name,
    sqlite_mode,
    sqlite_synchronous,
    temp_dir,
)

SUITE = "store"
LANES = 10
"""How many runs have steps in flight at once: a batch mixes the events of these runs."""
STEPS_PER_RUN = 20
"""Steps a run takes before it retires and a fresh run takes its lane."""
STEP_NAME = "benchmarks.store_bench:charge_card"

Floor = Callable[[], Awaitable[float]]
"""One raw write; returns its duration in seconds."""


class TrafficError(RuntimeError):
    """The store refused an event the traffic generator expected it to accept."""


@dataclass
class _Lane:
    run_id: str
    created_at: datetime
    step: int = 0
    phase: int = 0  # 0: next is step_created, 1: step_started, 2: step_completed


class StepTraffic:
    """Step events of ``lanes`` concurrently running runs, in lifecycle order per step.

    Runs are created and started beforehand (:meth:`setup_batches`, untimed); each batch
    takes the next event of each lane in turn, so a batch of 1 touches one run and a batch
    of 100 touches every lane several times, each run's events in order and guarded by the
    run's last event id before the batch.
    """

    def __init__(self, lanes: int = LANES, steps_per_run: int = STEPS_PER_RUN) -> None:
        self.lanes = lanes
        self.steps_per_run = steps_per_run
        self._fresh: deque[_Lane] = deque()
        self._active: list[_Lane] = []
        self._last: dict[str, str] = {}
        self._turn = 0

    def runs_needed(self, events: int) -> int:
        """How many runs ``events`` step events need (lanes retire after their steps)."""
        return math.ceil(events / (3 * self.steps_per_run)) + self.lanes + 1

    def setup_batches(self, runs: int, chunk: int = 200) -> list[list[NewEvent]]:
        """``run_created`` + ``run_started`` of ``runs`` new runs, in chunks to write first."""
        requests: list[NewEvent] = []
        for index in range(runs):
            run_id = new_id(RUN)
            now = datetime.now(UTC)
            data = codec.encode([[f"order-{index}", 4200], {}])
            requests.append(
                NewEvent(
                    run_id,
                    ev.RunCreated(workflow_name="benchmarks.store_bench:checkout", input=data),
                    created_at=now,
                    if_last_event_id="",
                )
            )
            requests.append(
                NewEvent(
                    run_id,
                    ev.RunStarted(worker_id="bench:1"),
                    created_at=now,
                    if_last_event_id="",
                )
            )
            self._fresh.append(_Lane(run_id, now))
        return [requests[i : i + chunk] for i in range(0, len(requests), chunk)]

    def batch(self, size: int) -> list[NewEvent]:
        """The next ``size`` step events, round-robin over the lanes."""
        while len(self._active) < self.lanes:
            self._active.append(self._take())
        now = datetime.now(UTC)
        out: list[NewEvent] = []
        for _ in range(size):
            slot = self._turn % len(self._active)
            self._turn += 1
            lane = self._active[slot]
            out.append(self._event(lane, now))
            if lane.phase == 0:
                lane.step += 1
                if lane.step == self.steps_per_run:
                    self._active[slot] = self._take()
        return out

    def settle(self, requests: Sequence[NewEvent], outcomes: Sequence[object]) -> None:
        """Record the accepted events' ids; raise if the store refused any."""
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise TrafficError(
                    f"the store refused {request.event_type} of run {request.run_id}: {outcome!r}"
                )
            if isinstance(outcome, ev.Event):
                self._last[request.run_id] = outcome.event_id

    def _take(self) -> _Lane:
        if not self._fresh:
            raise TrafficError("the traffic generator ran out of pre-created runs")
        return self._fresh.popleft()

    def _event(self, lane: _Lane, now: datetime) -> NewEvent:
        step_id = command_id(STEP, lane.run_id, lane.created_at, 0, lane.step)
        data: ev.EventData
        if lane.phase == 0:
            data = ev.StepCreated(
                step_name=STEP_NAME,
                input=codec.encode([[lane.step, "card_4242"], {}]),
                position=lane.step,
            )
        elif lane.phase == 1:
            data = ev.StepStarted()
        else:
            data = ev.StepCompleted(result=codec.encode({"charge": f"ch_{lane.step}", "ok": True}))
        lane.phase = (lane.phase + 1) % 3
        return NewEvent(
            lane.run_id,
            data,
            step_id,
            created_at=now,
            if_last_event_id=self._last.get(lane.run_id, ""),
        )


# -- raw floors ------------------------------------------------------------------------------

_FLOOR_TABLE = (
    "CREATE TABLE scratch (seq {pk}, event_id TEXT NOT NULL UNIQUE, run_id TEXT NOT NULL, "
    "event_type TEXT NOT NULL, correlation_id TEXT, data {blob} NOT NULL, created_at TEXT)"
)
_FLOOR_DATA = b"\x83\xa4type\xadstep_started\xa7attempt\x01\xa4note\xb0benchmark floor!"


class SqliteFloor:
    """Bare ``BEGIN``/``INSERT``/``COMMIT`` on a separate file with the store's pragmas."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {sqlite_synchronous().upper()}")
        self._conn.execute(_FLOOR_TABLE.format(pk="INTEGER PRIMARY KEY", blob="BLOB"))
        self._n = 0

    def level(self) -> int:
        """The connection's ``synchronous`` level as SQLite reports it (2 FULL, 1 NORMAL)."""
        return int(self._conn.execute("PRAGMA synchronous").fetchone()[0])

    async def once(self) -> float:
        """One raw write, timed (synchronously: the floor has no thread hand-off)."""
        self._n += 1
        row = (f"evnt_{self._n:026d}", "wrun_floor", "step_started", "step_x", _FLOOR_DATA, "now")
        start = time.perf_counter()
        self._conn.execute("BEGIN")
        self._conn.execute(
            "INSERT INTO scratch (event_id, run_id, event_type, correlation_id, data, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )
        self._conn.execute("COMMIT")
        return time.perf_counter() - start

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class PostgresFloor:
    """Bare autocommit ``INSERT`` into a table of a scratch schema, on one connection."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self._conn = conn
        self.schema = schema
        self._n = 0

    @classmethod
    async def open(cls, base: str) -> PostgresFloor:
        """Connect and create the scratch schema and table."""
        schema = scratch_name("bench_floor")
        conn = await asyncpg.connect(postgres_dsn(base), timeout=10)
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(
            _FLOOR_TABLE.format(pk="BIGSERIAL PRIMARY KEY", blob="BYTEA").replace(
                "CREATE TABLE scratch", f'CREATE TABLE "{schema}".scratch'
            )
        )
        return cls(conn, schema)

    async def once(self) -> float:
        """One raw write, timed."""
        self._n += 1
        start = time.perf_counter()
        await self._conn.execute(
            f'INSERT INTO "{self.schema}".scratch (event_id, run_id, event_type, '
            "correlation_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            f"evnt_{self._n:026d}",
            "wrun_floor",
            "step_started",
            "step_x",
            _FLOOR_DATA,
            "now",
        )
        return time.perf_counter() - start

    async def close(self) -> None:
        """Close the connection (the caller drops the schema)."""
        await self._conn.close()


# -- measuring -------------------------------------------------------------------------------


@dataclass
class BatchSamples:
    """Timed ``create_batch`` calls of one size and the floor writes interleaved with them."""

    size: int
    calls: list[float]
    floor: list[float]
    wall: float


def _target(kind: str, size: int) -> Target | None:
    if size == 1 and kind in ("sqlite", "postgres"):
        return Target("<=", 1.5, "ratio", "≤ 1.5x floor")
    if size == 100 and kind == "sqlite":
        return Target(">=", 50_000, "rate", "≥ 50,000 events/s")
    if size == 100 and kind == "postgres":
        return Target(">=", 25_000, "rate", "≥ 25,000 events/s")
    return None


async def measure_batches(store: Store, size: int, plan: Plan, floor: Floor | None) -> BatchSamples:
    """Write ``plan.batch_calls`` batches of ``size`` step events, each after a floor write."""
    traffic = StepTraffic()
    total = (plan.batch_calls + plan.batch_warmup) * size
    for chunk in traffic.setup_batches(traffic.runs_needed(total)):
        result = await store.create_batch(chunk)
        traffic.settle(chunk, result.outcomes)
    for _ in range(plan.batch_warmup):
        requests = traffic.batch(size)
        traffic.settle(requests, (await store.create_batch(requests)).outcomes)
        if floor is not None:
            await floor()
    calls: list[float] = []
    floors: list[float] = []
    wall = 0.0
    for _ in range(plan.batch_calls):
        if floor is not None:
            floors.append(await floor())
        requests = traffic.batch(size)
        start = time.perf_counter()
        result = await store.create_batch(requests)
        elapsed = time.perf_counter() - start
        calls.append(elapsed)
        wall += elapsed
        traffic.settle(requests, result.outcomes)
    return BatchSamples(size, calls, floors, wall)


def summarize(kind: str, samples: BatchSamples) -> Row:
    """The row of one store and batch size: latency, events/s, multiple of the floor."""
    med = stats.median(samples.calls) * 1000
    row = Row(
        suite=SUITE,
        store=kind,
        scenario="create_batch",
        size=samples.size,
        unit="ms",
        median=med,
        p95=stats.p95(samples.calls) * 1000,
        samples=len(samples.calls),
        spread=stats.spread(samples.calls),
        p99=stats.scaled(stats.p99(samples.calls), 1000),
        rate=samples.size / (med / 1000),
        target=_target(kind, samples.size),
    )
    row.extra["events_per_s_overall"] = samples.size * len(samples.calls) / samples.wall
    if samples.floor:
        floor_med = stats.median(samples.floor) * 1000
        row.ratio = med / floor_med
        row.extra["floor_median_ms"] = floor_med
        row.extra["floor_p95_ms"] = stats.p95(samples.floor) * 1000
    return row


def floor_row(kind: str, floors: list[float], suite: str = SUITE) -> Row:
    """The raw floor of a database over all its interleaved writes."""
    return Row(
        suite=suite,
        store=kind,
        scenario="raw_floor",
        size=1,
        unit="ms",
        median=stats.median(floors) * 1000,
        p95=stats.p95(floors) * 1000,
        samples=len(floors),
        spread=stats.spread(floors),
        rate=1 / stats.median(floors),
        p99=stats.scaled(stats.p99(floors), 1000),
    )


@asynccontextmanager
async def raw_floor(kind: str, postgres: str | None) -> AsyncIterator[Floor | None]:
    """One timed raw write on the database of ``kind`` (None for memory), cleaned up after."""
    if kind == "sqlite":
        async with temp_dir() as scratch:
            sqlite_floor = SqliteFloor(scratch / "floor.db")
            try:
                yield sqlite_floor.once
            finally:
                sqlite_floor.close()
    elif kind == "postgres":
        assert postgres is not None
        pg_floor = await PostgresFloor.open(postgres)
        try:
            yield pg_floor.once
        finally:
            await pg_floor.close()
            await drop_schemas(postgres, pg_floor.schema)
    else:
        yield None


async def _measure_kind(kind: str, plan: Plan, postgres: str | None, out: SuiteResult) -> None:
    floors: list[float] = []
    for size in plan.batch_sizes:
        async with raw_floor(kind, postgres) as floor_fn, fresh_store_url(kind, postgres) as url:
            store = await open_store(url)
            try:
                samples = await measure_batches(store, size, plan, floor_fn)
            finally:
                await store.close()
        out.rows.append(summarize(kind, samples))
        floors.extend(samples.floor)
        say(f"store {kind} batch={size}: median {out.rows[-1].median:.3f} ms")
    if floors:
        out.rows.append(floor_row(kind, floors))


async def run_store_suite(plan: Plan, stores: Sequence[str], postgres: str | None) -> SuiteResult:
    """Measure ``create_batch`` on each store kind in ``stores``."""
    out = SuiteResult(SUITE)
    out.notes.append(
        f"Each batch holds step events (step_created/step_started/step_completed) of {LANES} "
        f"running runs, guarded by if_last_event_id; {plan.batch_calls} timed calls per size "
        "after warm-up, each right after one raw floor write (interleaved)."
    )
    out.notes.append(
        f"Floor: SQLite = BEGIN/INSERT/COMMIT on a separate WAL file with {sqlite_mode()}, "
        "called directly (no thread hand-off); PostgreSQL = one autocommit INSERT on one "
        "asyncpg connection into a scratch schema of the same database."
    )

    async def measure(kind: str) -> None:
        await _measure_kind(kind, plan, postgres, out)

    async for _ in each_store("store", stores, postgres, out, measure):
        pass
    return out
