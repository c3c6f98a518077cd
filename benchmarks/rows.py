"""Building report rows from raw samples (seconds): latencies in ms, throughputs in MiB/s.

Shared by the streams, hooks and otel suites so their rows read like the runtime suite's:
``median``/``p95`` (and ``p99`` from ``stats.P99_MIN_SAMPLES`` samples) of latencies in
milliseconds; for a throughput row, the rates of the median and of the p95 (p99) slow-tail
repetition.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import stats
from .config import MIB
from .model import Row, Target


def ms_row(
    suite: str,
    store: str,
    scenario: str,
    size: int | None,
    seconds: Sequence[float],
    target_ms: float | None = None,
    detail: str = "",
) -> Row:
    """A latency row: median and p95 of ``seconds`` in ms, with an optional ``≤`` target."""
    row = Row(
        suite=suite,
        store=store,
        scenario=scenario,
        size=size,
        unit="ms",
        median=stats.median(seconds) * 1000,
        p95=stats.p95(seconds) * 1000,
        samples=len(seconds),
        spread=stats.spread(seconds),
        p99=stats.scaled(stats.p99(seconds), 1000),
    )
    if target_ms is not None:
        row.target = Target("<=", target_ms, "median", f"≤ {target_ms:g} ms")
    if detail:
        row.extra["detail"] = detail
    return row


def mib_per_s(nbytes: int, seconds: float) -> float:
    """Throughput of ``nbytes`` moved in ``seconds``, in MiB/s."""
    return nbytes / MIB / seconds


def rate_row(
    suite: str,
    store: str,
    scenario: str,
    size: int | None,
    nbytes: int,
    seconds: Sequence[float],
    detail: str = "",
) -> Row:
    """A throughput row: ``nbytes`` per repetition over the wall times ``seconds``, in MiB/s."""
    row = Row(
        suite=suite,
        store=store,
        scenario=scenario,
        size=size,
        unit="MiB/s",
        median=mib_per_s(nbytes, stats.median(seconds)),
        p95=mib_per_s(nbytes, stats.p95(seconds)),
        samples=len(seconds),
        spread=stats.spread(seconds),
    )
    slow = stats.p99(seconds)
    row.p99 = None if slow is None else mib_per_s(nbytes, slow)
    row.rate = row.median
    row.extra["wall_median_ms"] = stats.median(seconds) * 1000
    if detail:
        row.extra["detail"] = detail
    return row
