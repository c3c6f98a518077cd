"""The focused suite's raw samples, what each round runs, and their summary as rows and series.

Raw samples (:class:`FocusedRaw`, seconds) are kept apart from their summary so DBOS's
samples, measured by ``benchmarks/peers/dbos_focused.py``, are summarized by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import stats
from .config import Plan
from .model import Row, Series

SUITE = "focused"


@dataclass(frozen=True)
class FocusedScenarios:
    """What one round measures, per engine."""

    wo_steps: tuple[int, ...]
    fanout_widths: tuple[int, ...]
    concurrency: tuple[int, ...]
    repeat: int
    """Measured runs per scenario and size in one round (after one warm-up run)."""
    recovery_steps: int
    """Completed steps of the run recovered once per round (0: no recovery)."""

    @classmethod
    def of(cls, plan: Plan) -> FocusedScenarios:
        """The focused scenarios of ``plan``."""
        return cls(
            wo_steps=plan.focused_wo_steps,
            fanout_widths=plan.focused_fanout_widths,
            concurrency=plan.focused_concurrency,
            repeat=plan.focused_repeat,
            recovery_steps=plan.focused_recovery_steps,
        )

    def without_recovery(self) -> FocusedScenarios:
        """The same scenarios, recovery left out (a store that cannot recover)."""
        return FocusedScenarios(self.wo_steps, self.fanout_widths, self.concurrency, self.repeat, 0)

    def to_json(self) -> dict[str, Any]:
        """The scenarios as a dict (what the DBOS script is told to run)."""
        return {
            "wo_steps": list(self.wo_steps),
            "fanout_widths": list(self.fanout_widths),
            "concurrency": list(self.concurrency),
            "repeat": self.repeat,
            "recovery_steps": self.recovery_steps,
        }


def _sized(data: dict[str, Any], name: str) -> dict[int, list[float]]:
    return {int(k): [float(x) for x in v] for k, v in dict(data.get(name, {})).items()}


@dataclass
class FocusedRaw:
    """Raw samples in seconds, by scenario and size, pooled over the rounds."""

    wo: dict[int, list[float]] = field(default_factory=dict)
    """Seconds outside step bodies, per run, by its number of steps."""
    fanout_first: dict[int, list[float]] = field(default_factory=dict)
    fanout_last: dict[int, list[float]] = field(default_factory=dict)
    runs: dict[int, list[float]] = field(default_factory=dict)
    """Seconds to start that many one-step runs together and hold every result."""
    recovery_steps: int = 0
    recovery_entry: list[float] = field(default_factory=list)
    """Seconds from opening the new worker to the next step body's entry."""
    recovery_result: list[float] = field(default_factory=list)
    """Seconds from opening the new worker to the run's result."""

    def extend(self, other: FocusedRaw) -> None:
        """Add ``other``'s samples (another round) to these."""
        for mine, theirs in (
            (self.wo, other.wo),
            (self.fanout_first, other.fanout_first),
            (self.fanout_last, other.fanout_last),
            (self.runs, other.runs),
        ):
            for size, samples in theirs.items():
                mine.setdefault(size, []).extend(samples)
        if other.recovery_entry:
            self.recovery_steps = other.recovery_steps
            self.recovery_entry.extend(other.recovery_entry)
            self.recovery_result.extend(other.recovery_result)

    def to_json(self) -> dict[str, Any]:
        """A dict for ``json.dump`` (sizes become string keys)."""
        return {
            "wo": {str(k): v for k, v in self.wo.items()},
            "fanout_first": {str(k): v for k, v in self.fanout_first.items()},
            "fanout_last": {str(k): v for k, v in self.fanout_last.items()},
            "runs": {str(k): v for k, v in self.runs.items()},
            "recovery_steps": self.recovery_steps,
            "recovery_entry": self.recovery_entry,
            "recovery_result": self.recovery_result,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FocusedRaw:
        """The inverse of :meth:`to_json` (also reads the DBOS script's output)."""
        return cls(
            wo=_sized(data, "wo"),
            fanout_first=_sized(data, "fanout_first"),
            fanout_last=_sized(data, "fanout_last"),
            runs=_sized(data, "runs"),
            recovery_steps=int(data.get("recovery_steps", 0)),
            recovery_entry=[float(x) for x in data.get("recovery_entry", [])],
            recovery_result=[float(x) for x in data.get("recovery_result", [])],
        )


def ms_row(
    kind: str, engine: str, scenario: str, size: int, seconds: Sequence[float], scale: float = 1
) -> Row:
    """Median, p95 and p99 (from ``stats.P99_MIN_SAMPLES`` samples) of ``seconds / scale``,
    in ms."""
    values = [s / scale * 1000 for s in seconds]
    row = Row(
        suite=SUITE,
        store=kind,
        scenario=scenario,
        size=size,
        unit="ms" if scale == 1 else "ms/step",
        median=stats.median(values),
        p95=stats.p95(values),
        samples=len(values),
        engine=engine,
        spread=stats.spread(values),
        p99=stats.p99(values),
    )
    return row


def runs_row(kind: str, engine: str, concurrency: int, walls: Sequence[float]) -> Row:
    """Runs/s of ``concurrency`` one-step runs: the rates of the median and p95 wall times."""
    row = Row(
        suite=SUITE,
        store=kind,
        scenario="concurrent_runs",
        size=concurrency,
        unit="runs/s",
        median=concurrency / stats.median(walls),
        p95=concurrency / stats.p95(walls),
        samples=len(walls),
        engine=engine,
        spread=stats.spread(walls),
    )
    row.rate = row.median
    wall_ms = stats.median(walls) * 1000
    row.extra["wall_median_ms"] = wall_ms
    row.extra["detail"] = f"wall {wall_ms:.3g} ms"
    slow = stats.p99(walls)
    row.p99 = None if slow is None else concurrency / slow
    return row


def summarize(kind: str, raw: FocusedRaw, engine: str = "actorflow") -> list[Row]:
    """The rows of one engine on one store kind."""
    rows: list[Row] = []
    for n in sorted(raw.wo):
        rows.append(ms_row(kind, engine, "wo_per_step", n, raw.wo[n], scale=n))
        rows.append(ms_row(kind, engine, "wo_total", n, raw.wo[n]))
    for width in sorted(raw.fanout_first):
        rows.append(ms_row(kind, engine, "fanout_first", width, raw.fanout_first[width]))
        rows.append(ms_row(kind, engine, "fanout_last", width, raw.fanout_last[width]))
    for concurrency in sorted(raw.runs):
        rows.append(runs_row(kind, engine, concurrency, raw.runs[concurrency]))
    if raw.recovery_entry:
        steps = raw.recovery_steps
        rows.append(ms_row(kind, engine, "recovery_next_step", steps, raw.recovery_entry))
        rows.append(ms_row(kind, engine, "recovery_result", steps, raw.recovery_result))
    return rows


def fanout_series(kind: str, raw: FocusedRaw, engine: str = "actorflow") -> list[Series]:
    """Median time to the first and the last branch (ms) by width."""
    widths = sorted(raw.fanout_first)
    if not widths:
        return []
    return [
        Series(
            kind=name,
            store=kind,
            engine=engine,
            unit="ms",
            y=[stats.median(samples[w]) * 1000 for w in widths],
            x=[float(w) for w in widths],
        )
        for name, samples in (("fanout_first", raw.fanout_first), ("fanout_last", raw.fanout_last))
    ]
