"""What a benchmark run measures: sizes and repetitions (full or ``--quick``) and the stores.

One :class:`Plan` drives every suite, so ``--quick`` and ``--repeat`` mean the same thing
everywhere and the peer comparison runs exactly the scenarios of the runtime suite.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

STORE_KINDS: tuple[str, ...] = ("memory", "sqlite", "postgres")
PEER_STORE_KINDS: tuple[str, ...] = ("sqlite", "postgres")
POSTGRES_ENV = "ACTORFLOW_BENCH_POSTGRES_URL"
KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Plan:
    """Sizes and repetition counts of one run of the harness."""

    quick: bool
    repeat: int
    batch_sizes: tuple[int, ...]
    batch_calls: int
    batch_warmup: int
    ttfs_samples: int
    seq_lengths: tuple[int, ...]
    seq_repeat: int
    gather_sizes: tuple[int, ...]
    gather_repeat: int
    one_step_runs: int
    one_step_repeat: int
    peer_gather_sizes: tuple[int, ...]
    stream_bytes: int
    """Bytes per stream in the throughput, parallel and pipeline scenarios."""
    stream_chunk: int
    """Bytes per chunk written."""
    stream_ttfb_samples: int
    stream_repeat: int
    """Repetitions of the throughput, parallel and pipeline scenarios."""
    parallel_streams: int
    pipeline_stages: int
    hook_samples: int
    otel_steps: int
    """Sequential no-op steps per run in the OpenTelemetry overhead scenario."""
    otel_repeat: int
    """Runs per configuration in each round of the OpenTelemetry scenario."""
    otel_rounds: int
    """Rounds, each measuring every configuration once, in turn (so drift hits all alike)."""
    sleepers: int
    """Sleeping runs started, held and recovered by one SQLite worker."""
    sleepers_traced: int
    """Sleeping runs measured with tracemalloc (bytes a run retains, live and passivated)."""
    sleepers_dbos: int
    """Sleeping workflows DBOS starts and recovers beside the sleepers suite (far fewer: it
    starts far fewer a second; half as many measured with tracemalloc)."""
    orders: int
    """Orders (runs of the order workflow) run at once in the CPU-per-run scenario."""
    orders_repeat: int
    focused_wo_steps: tuple[int, ...]
    """Steps per run in the workflow-overhead scenario of the focused suite."""
    focused_fanout_widths: tuple[int, ...]
    """Branches per run in the focused suite's time to first and last branch."""
    focused_concurrency: tuple[int, ...]
    """One-step runs started together in the focused suite's runs/s."""
    focused_recovery_steps: int
    """Completed steps of the run the focused suite recovers after killing its worker."""
    focused_rounds: int
    """Rounds of the focused suite, each measuring every engine once, in turn."""
    focused_repeat: int
    """Measured runs per focused scenario and size in each round."""
    reference_sizes: tuple[int, ...]
    """Step counts of the reference suite's sequential, gather, race and payload scenarios."""
    reference_repeat: int
    """Measured rounds of the reference suite (each runs every scenario once per engine)."""
    reference_warmup: int
    """Rounds run first and not counted (the as-written forms have none)."""
    reference_asis: bool
    """Whether the reference suite runs its as-written forms (steps that sleep)."""

    @property
    def long_seq(self) -> int:
        """The sequential length whose gaps are checked for growth (slope, windows)."""
        return max(self.seq_lengths)


def make_plan(quick: bool, repeat: int | None) -> Plan:
    """The full plan, or the small one of ``--quick``; ``repeat`` scales repetitions."""
    if quick:
        r = repeat or 2
        return Plan(
            quick=True,
            repeat=r,
            batch_sizes=(1, 10, 100),
            batch_calls=10 * r,
            batch_warmup=2,
            ttfs_samples=5 * r,
            seq_lengths=(1, 10, 100),
            seq_repeat=r,
            gather_sizes=(10, 50, 100),
            gather_repeat=r,
            one_step_runs=100,
            one_step_repeat=r,
            peer_gather_sizes=(10, 50),
            stream_bytes=256 * KIB,
            stream_chunk=64 * KIB,
            stream_ttfb_samples=5 * r,
            stream_repeat=r,
            parallel_streams=10,
            pipeline_stages=5,
            hook_samples=5 * r,
            otel_steps=50,
            otel_repeat=r,
            otel_rounds=1,
            sleepers=2_000,
            sleepers_traced=500,
            sleepers_dbos=200,
            orders=100,
            orders_repeat=1,
            focused_wo_steps=(10,),
            focused_fanout_widths=(10, 100),
            focused_concurrency=(1, 10, 100),
            focused_recovery_steps=100,
            focused_rounds=r,
            focused_repeat=2,
            reference_sizes=(10,),
            reference_repeat=r,
            reference_warmup=1,
            reference_asis=False,
        )
    r = repeat or 5
    return Plan(
        quick=False,
        repeat=r,
        batch_sizes=(1, 10, 100),
        batch_calls=60 * r,
        batch_warmup=10,
        ttfs_samples=20 * r,
        seq_lengths=(1, 10, 100, 1000),
        seq_repeat=r,
        gather_sizes=(10, 50, 1000),
        gather_repeat=2 * r,
        one_step_runs=1000,
        one_step_repeat=r,
        peer_gather_sizes=(10, 50),
        stream_bytes=MIB,
        stream_chunk=64 * KIB,
        stream_ttfb_samples=20 * r,
        stream_repeat=2 * r,
        parallel_streams=10,
        pipeline_stages=5,
        hook_samples=20 * r,
        otel_steps=200,
        otel_repeat=2 * r,
        otel_rounds=3,
        sleepers=100_000,
        sleepers_traced=10_000,
        sleepers_dbos=2_000,
        orders=300,
        orders_repeat=3,
        focused_wo_steps=(10, 100),
        focused_fanout_widths=(10, 100, 1000),
        focused_concurrency=(1, 10, 100, 1000),
        focused_recovery_steps=1000,
        focused_rounds=r,
        focused_repeat=3,
        reference_sizes=(10, 25, 50),
        reference_repeat=r,
        reference_warmup=1,
        reference_asis=True,
    )


def parse_stores(text: str) -> tuple[str, ...]:
    """``memory,sqlite,postgres`` as a tuple of known store kinds (``pg`` = postgres)."""
    kinds: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        name = {"pg": "postgres", "postgresql": "postgres", "mem": "memory"}.get(name, name)
        if name not in STORE_KINDS:
            raise ValueError(f"unknown store {part!r}: use {', '.join(STORE_KINDS)}")
        if name not in kinds:
            kinds.append(name)
    if not kinds:
        raise ValueError("no store given")
    return tuple(kinds)


def postgres_url(given: str | None) -> str | None:
    """The PostgreSQL server to measure on: ``--postgres`` or ``$ACTORFLOW_BENCH_POSTGRES_URL``."""
    return given or os.environ.get(POSTGRES_ENV) or None
