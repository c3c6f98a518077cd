"""The result types every suite returns and the report renders: rows, targets, comparisons.

Latencies are stored in milliseconds, rates in events or runs per second. A row's ``target``
names which of its numbers it applies to (the median, the rate or the ratio), so the report
can say whether it was met without knowing the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TargetField = Literal["median", "rate", "ratio"]
TargetOp = Literal["<=", ">=", "within"]


@dataclass(frozen=True)
class Target:
    """A goal for one number of a row: ``<=``/``>=`` a value, or ``within`` ±value of 1."""

    op: TargetOp
    value: float
    field: TargetField
    text: str

    def met(self, measured: float) -> bool:
        """Whether ``measured`` meets the goal."""
        if self.op == "<=":
            return measured <= self.value
        if self.op == ">=":
            return measured >= self.value
        return abs(measured - 1.0) <= self.value


@dataclass
class Row:
    """One measured scenario of one store.

    ``median``/``p95``/``p99`` are in ``unit``; for a throughput row (unit ``runs/s``) they
    are the rates of the median and of the p95 (p99) slow-tail repetition. ``rate`` is events
    or runs per second where that applies, ``ratio`` the multiple of the raw floor (store
    suite).
    """

    suite: str
    store: str
    scenario: str
    size: int | None
    unit: str
    median: float
    p95: float | None
    samples: int
    rate: float | None = None
    ratio: float | None = None
    target: Target | None = None
    spread: float | None = None
    """The samples' interquartile range over their median (see ``stats.spread``)."""
    engine: str = "actorflow"
    extra: dict[str, float | str] = field(default_factory=dict)
    p99: float | None = None
    """The 99th percentile in ``unit`` (for a throughput row, the rate of the p99 repetition);
    None under ``stats.P99_MIN_SAMPLES`` samples or where no percentile applies."""

    def measured(self, name: TargetField) -> float | None:
        """The number a target on ``name`` applies to."""
        if name == "median":
            return self.median
        if name == "rate":
            return self.rate
        return self.ratio

    @property
    def met(self) -> bool | None:
        """Whether the row's target was met (None without a target or the number)."""
        if self.target is None:
            return None
        value = self.measured(self.target.field)
        return None if value is None else self.target.met(value)


@dataclass
class Comparison:
    """actorflow beside a peer engine on one scenario and store.

    ``ratio`` is ours/peer of the medians: below 1 means actorflow is faster for latencies
    (``better == "lower"``), above 1 means it is faster for rates (``better == "higher"``).
    The p99s are there only where both rows have one.
    """

    scenario: str
    size: int | None
    store: str
    unit: str
    ours_median: float
    ours_p95: float | None
    peer_median: float
    peer_p95: float | None
    better: Literal["lower", "higher"]
    ours_p99: float | None = None
    peer_p99: float | None = None

    @property
    def ratio(self) -> float:
        """ours/peer of the medians."""
        return self.ours_median / self.peer_median if self.peer_median else float("inf")

    def with_p99(self, ours: Row, peer: Row) -> Comparison:
        """This comparison with the p99s of ``ours`` and ``peer`` if both rows have one."""
        if ours.p99 is not None and peer.p99 is not None:
            self.ours_p99, self.peer_p99 = ours.p99, peer.p99
        return self


@dataclass
class Series:
    """A curve or a distribution for the report's plots, beside the rows that summarize it.

    ``kind`` names the plot it belongs to (``stso``: the gap by step index; ``fanout_first``
    and ``fanout_last``: time to the first and last branch by width; ``stream_ttfb``: time to
    first byte samples: the reference suite's; :data:`STREAMS_TTFB`, the streams suite's,
    drawn in the same figure). ``x`` is the index or width of each value of ``y`` (empty for a
    bare distribution), ``y`` is in ``unit``.
    """

    kind: str
    store: str
    engine: str
    unit: str
    y: list[float]
    x: list[float] = field(default_factory=list)


STREAMS_TTFB = "stream_ttfb_streams"
"""The kind of the streams suite's time-to-first-byte series: the reference suite's are
``stream_ttfb`` under the same store and engine, so the plot tells the two apart by kind."""


class WrongResultError(RuntimeError):
    """A scenario got another result than its workflow must produce: a bug, not a number."""


@dataclass
class SuiteResult:
    """What one suite measured, plus what it could not measure and why."""

    name: str
    rows: list[Row] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    peer: dict[str, str] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
