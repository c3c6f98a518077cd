"""Where the time of a sequential step goes: ``python -m benchmarks.step_profile``.

One run of ``n`` sequential no-op steps on a fresh store, with the store's seams timed:
the await of ``create_batch`` on the event loop and, on SQLite, the writer thread's job and
each statement it runs. Per step (the medians of the steps after the first 100, so the run
is warm; medians of parts need not add up to the median of their sum), the parts of the
gap between two step bodies:

* ``loop``: the engine's Python and event-loop turns outside the store's write (the step's
  end reaching its run, the core, the program, the next body started), step by step the
  gap less the write inside it;
* ``store``: the await of ``create_batch`` (on memory its planning; on PostgreSQL the
  statement's round trip and asyncpg's encoding), which on SQLite is
  ``to writer`` (the loop hands the job to the writer thread) + ``writer`` + ``to loop``
  (the result comes back: ``call_soon_threadsafe``, the loop wakes, the batcher and the
  run resume);
* ``writer`` (SQLite): ``BEGIN IMMEDIATE``, ``COMMIT`` (with its fsync), the other
  statements, and the writer's Python (planning, encoding: the rest of the job).

The timings patch the store's methods for the run and restore them after; they add about
a microsecond per timed call. Run it on a quiet machine: it is one run, not a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from persistence import Store
from persistence import _sqlite_jobs as sqlite_jobs
from runtime import Runtime

from .config import postgres_url
from .stores import fresh_store_url
from .workflows import sequential, take_stamps

WARM_STEPS = 100
"""Steps left out at the start of the run (imports, statements, caches, the WAL)."""

_BEGIN, _COMMIT = "BEGIN IMMEDIATE", "COMMIT"


@dataclass
class StepProfile:
    """The medians (µs) of one store's step parts; see the module docstring."""

    kind: str
    steps: int
    gap: float = 0.0
    loop: float = 0.0
    store: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    """SQLite only: to writer, writer, to loop, and the writer's begin, commit, sql, python."""

    def lines(self) -> list[str]:
        """The profile as Markdown table rows: part, µs, share of the gap."""
        rows = [("gap between two step bodies", self.gap), ("loop", self.loop)]
        rows.append(("store (`create_batch` awaited)", self.store))
        rows += [(f"  {name}", value) for name, value in self.parts.items()]
        out = [f"| {self.kind}: part of a step | µs | share |", "| --- | ---: | ---: |"]
        for name, value in rows:
            share = f"{value / self.gap:.0%}" if self.gap else "—"
            out.append(f"| {name} | {value:.0f} | {share} |")
        return out


@dataclass
class _Calls:
    """What the patched seams saw, in order: one entry per ``create_batch`` call."""

    batches: list[list[float]] = field(default_factory=list)
    """Per call: [entered, writer started, writer ended, returned] (perf_counter seconds;
    the writer's two only on SQLite)."""
    statements: list[dict[str, float]] = field(default_factory=list)
    """Per writer job (SQLite): seconds by statement kind (begin, commit, sql)."""


class _TimedConnection:
    """A SQLite connection whose ``execute``/``executemany`` time themselves into ``spent``."""

    def __init__(self, conn: Any, spent: dict[str, float]) -> None:
        self._conn = conn
        self._spent = spent

    def _timed(self, call: Callable[..., Any], sql: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(sql, *args)
        finally:
            kind = "begin" if sql == _BEGIN else "commit" if sql == _COMMIT else "sql"
            self._spent[kind] = self._spent.get(kind, 0.0) + time.perf_counter() - started

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.execute, sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.executemany, sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextmanager
def _timed_store(store: Store, calls: _Calls) -> Iterator[None]:
    """Time ``store``'s ``create_batch`` (and on SQLite its writer's job) while inside."""
    create_batch = store.create_batch

    async def timed_batch(requests: Any) -> Any:
        stamps = [time.perf_counter()]
        calls.batches.append(stamps)
        try:
            return await create_batch(requests)
        finally:
            stamps.append(time.perf_counter())

    jobs = sqlite_jobs  # the SQLite store looks its job up here at each write
    write_batch = jobs.write_batch

    def timed_job(conn: Any, cache: Any, requests: Any) -> Any:
        stamps = calls.batches[-1] if calls.batches else []
        spent: dict[str, float] = {}
        stamps.append(time.perf_counter())
        try:
            timed = cast(sqlite3.Connection, _TimedConnection(conn, spent))
            return write_batch(timed, cache, requests)
        finally:
            stamps.append(time.perf_counter())
            calls.statements.append(spent)

    store.create_batch = timed_batch  # type: ignore[method-assign]
    jobs.write_batch = timed_job
    try:
        yield
    finally:
        jobs.write_batch = write_batch
        del store.create_batch  # the class's method again


def _median_us(values: list[float]) -> float:
    return statistics.median(values) * 1e6 if values else 0.0


def summarize(kind: str, stamps: list[float], calls: _Calls) -> StepProfile:
    """The profile of one run from its step bodies' entry times and the seams' timings.

    The write that ends step ``j`` and starts step ``j + 1`` is the ``j + 1``-th (the first
    creates the run), so each gap is paired with the write inside it."""
    profile = StepProfile(kind, len(stamps))
    if len(stamps) <= WARM_STEPS + 1:
        raise ValueError(f"too few steps to profile: {len(stamps)} (more than {WARM_STEPS + 1})")
    body = stamps[WARM_STEPS:]
    gaps = [b - a for a, b in itertools.pairwise(body)]
    batches = calls.batches[WARM_STEPS + 1 : WARM_STEPS + 1 + len(gaps)]
    if len(batches) < len(gaps):
        raise ValueError(f"{len(gaps)} gaps but {len(batches)} writes inside them")
    stores = [b[-1] - b[0] for b in batches]
    profile.gap = _median_us(gaps)
    profile.store = _median_us(stores)
    profile.loop = _median_us([gap - store for gap, store in zip(gaps, stores, strict=True)])
    if all(len(b) == 4 for b in batches):
        start = WARM_STEPS + 1
        jobs = calls.statements[start : start + len(batches)]
        writer = [b[2] - b[1] for b in batches]
        profile.parts = {
            "to writer": _median_us([b[1] - b[0] for b in batches]),
            "writer": _median_us(writer),
            "to loop": _median_us([b[3] - b[2] for b in batches]),
        }
        for part in ("begin", "commit", "sql"):
            profile.parts[f"  writer: {part}"] = _median_us([j.get(part, 0.0) for j in jobs])
        python = [w - sum(j.values()) for w, j in zip(writer, jobs, strict=True)]
        profile.parts["  writer: python"] = _median_us(python)
    return profile


async def profile_steps(kind: str, steps: int, postgres: str | None = None) -> StepProfile:
    """Profile one run of ``steps`` sequential steps on a fresh store of ``kind``."""
    async with fresh_store_url(kind, postgres) as url, Runtime(url, workflows=[sequential]) as rt:
        warm = await rt.start(sequential, "warm", 20)
        await warm.result()
        take_stamps("warm")
        calls = _Calls()
        with _timed_store(rt.store, calls):
            run = await rt.start(sequential, "profiled", steps)
            await run.result()
        return summarize(kind, take_stamps("profiled"), calls)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.step_profile [--store KIND] [--steps N]``."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.step_profile",
        description="Where the time of a sequential step goes, store by store.",
    )
    p.add_argument(
        "--store",
        action="append",
        choices=("memory", "sqlite", "postgres"),
        help="repeat for several (default: memory and sqlite; postgres needs "
        "$ACTORFLOW_BENCH_POSTGRES_URL)",
    )
    p.add_argument("--steps", type=int, default=2000, help="steps in the run (default 2000)")
    args = p.parse_args(argv)
    if args.steps <= WARM_STEPS + 1:
        p.error(f"--steps must be more than {WARM_STEPS + 1}")
    for kind in args.store or ["memory", "sqlite"]:
        url = postgres_url(None) if kind == "postgres" else None
        if kind == "postgres" and url is None:
            p.error("postgres needs $ACTORFLOW_BENCH_POSTGRES_URL")
        profile = asyncio.run(profile_steps(kind, args.steps, url))
        print("\n".join(profile.lines()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
