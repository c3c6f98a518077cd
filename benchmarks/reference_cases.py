"""The reference suite's cases, their sleep floors, raw samples and rows: pure, no I/O.

A :class:`Case` is one scenario of the reference suite at one size in one form: ``asis``
(the steps sleep as the reference suite's do), ``noop`` (the same shape, no sleeps) or, for
a scenario whose reference steps never sleep, no form. Cases travel as JSON to the DBOS
script, which measures them with the same meaning; both engines' raw samples
(:class:`RefSamples`, seconds) are summarized by :func:`summarize`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import stats
from .config import KIB, MIB, Plan
from .model import Comparison, Row

SUITE = "reference"
ASIS, NOOP = "asis", "noop"

ONE_STEP_SLEEP_MS = 1000.0
CONCURRENT_SLEEP_MS = 1000.0
"""Each step's sleep in the gather and race scenarios."""
SEQ_SLEEP_MS = {10: 1000.0, 25: 500.0, 50: 200.0, 100: 100.0, 500: 50.0, 1000: 10.0}
"""Each step's sleep in the sequential scenario, by its length (shorter for longer runs)."""
TEXT_CHUNKS = 50
TEXT_CHUNK_BYTES = 100
TEXT_INTERVAL_MS = 10.0
PAYLOAD_BYTES = 10 * KIB
STREAM_BYTES = MIB
STREAM_CHUNK = 64 * KIB
PIPELINE_STAGES = 5
PARALLEL_STREAMS = 10

SLEEPING = ("one_step", "seq", "gather", "race", "stream")
"""Scenarios whose reference steps sleep: they run in both forms."""
SIZED = ("seq", "gather", "race", "payload_seq", "payload_gather")
"""Scenarios run at each of the plan's sizes."""
SCENARIOS = (
    "no_steps",
    "one_step",
    "seq",
    "gather",
    "race",
    "payload_seq",
    "payload_gather",
    "stream",
    "pipeline",
    "parallel_streams",
    "fanout_streams",
)
"""Every scenario, in the order a round runs them."""


class CaseError(ValueError):
    """A case that the suite does not define (an unknown scenario, form or size)."""


def step_sleep_ms(scenario: str, size: int | None, form: str) -> float:
    """What each step sleeps (for ``stream``: the gap between chunks) in ``form``."""
    if form != ASIS:
        return 0.0
    if scenario == "one_step":
        return ONE_STEP_SLEEP_MS
    if scenario in ("gather", "race"):
        return CONCURRENT_SLEEP_MS
    if scenario == "stream":
        return TEXT_INTERVAL_MS
    if scenario == "seq":
        if size not in SEQ_SLEEP_MS:
            raise CaseError(f"no as-written sleep for {size} sequential steps")
        return SEQ_SLEEP_MS[size]
    raise CaseError(f"the {scenario} scenario has no as-written form")


@dataclass(frozen=True)
class Case:
    """One scenario at one size in one form, with what each step sleeps."""

    scenario: str
    size: int | None
    form: str = ""
    sleep_ms: float = 0.0

    @classmethod
    def of(cls, scenario: str, size: int | None, form: str = "") -> Case:
        """The case, its sleep looked up (:class:`CaseError` if the suite has no such case)."""
        if scenario not in SCENARIOS:
            raise CaseError(f"unknown reference scenario {scenario!r}")
        if (form in (ASIS, NOOP)) != (scenario in SLEEPING):
            raise CaseError(f"the {scenario} scenario has no form {form!r}")
        return cls(scenario, size, form, step_sleep_ms(scenario, size, form))

    @property
    def name(self) -> str:
        """The row's scenario name: ``ref_seq_asis``, ``ref_pipeline``."""
        return self.named("")

    def named(self, metric: str) -> str:
        """The name of one of the case's metrics: ``ref_seq_overhead_asis``."""
        parts = ["ref", self.scenario, metric, self.form]
        return "_".join(p for p in parts if p)

    @property
    def key(self) -> str:
        """A JSON key for the case's samples."""
        return f"{self.name}:{'' if self.size is None else self.size}"

    @property
    def floor_s(self) -> float:
        """The sleep floor: seconds of sleep on the critical path (0 for no sleeps)."""
        return sleep_floor(self.scenario, self.size, self.sleep_ms)

    def to_json(self) -> dict[str, Any]:
        """The case as a dict (what the DBOS script is told to run)."""
        return {
            "scenario": self.scenario,
            "size": self.size,
            "form": self.form,
            "sleep_ms": self.sleep_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        """The inverse of :meth:`to_json`, checked."""
        size = data.get("size")
        return cls.of(str(data["scenario"]), None if size is None else int(size), data["form"])


def sleep_floor(scenario: str, size: int | None, sleep_ms: float) -> float:
    """Seconds the sleeps of a run put on its critical path: one step's sleep; the sum of
    the sequential steps' sleeps; one step's sleep when they run at once; the gaps between
    the small stream's chunks."""
    seconds = sleep_ms / 1000
    if scenario in ("one_step", "gather", "race"):
        return seconds
    if scenario == "seq":
        return (size or 0) * seconds
    if scenario == "stream":
        return (TEXT_CHUNKS - 1) * seconds
    return 0.0


def cases_of(plan: Plan) -> list[Case]:
    """Every case of ``plan``, in round order: noop forms (and forms-less scenarios) at the
    plan's sizes, then, if the plan has them, the as-written forms."""
    sizes = plan.reference_sizes
    out = [Case.of("no_steps", None), Case.of("one_step", 1, NOOP)]
    for scenario in ("seq", "gather", "race"):
        out.extend(Case.of(scenario, n, NOOP) for n in sizes)
    for scenario in ("payload_seq", "payload_gather"):
        out.extend(Case.of(scenario, n) for n in sizes)
    out.append(Case.of("stream", TEXT_CHUNKS, NOOP))
    out.append(Case.of("pipeline", PIPELINE_STAGES))
    out.append(Case.of("parallel_streams", PARALLEL_STREAMS))
    out.append(Case.of("fanout_streams", PARALLEL_STREAMS))
    if plan.reference_asis:
        out.append(Case.of("one_step", 1, ASIS))
        for scenario in ("seq", "gather", "race"):
            out.extend(Case.of(scenario, n, ASIS) for n in sizes)
        out.append(Case.of("stream", TEXT_CHUNKS, ASIS))
    return out


def runs_in_round(case: Case, round_index: int, plan: Plan) -> bool:
    """Whether ``case`` runs in round ``round_index`` (0-based): as-written forms once, in
    the last round, with no warm-up; the others in every round."""
    if case.form == ASIS:
        return round_index == rounds_of(plan) - 1
    return True


def kept(case: Case, round_index: int, plan: Plan) -> bool:
    """Whether the samples of ``case`` in round ``round_index`` count (not a warm-up)."""
    return case.form == ASIS or round_index >= plan.reference_warmup


def rounds_of(plan: Plan) -> int:
    """Rounds of a run: the warm-ups, then the repetitions."""
    return plan.reference_warmup + plan.reference_repeat


@dataclass
class RefSamples:
    """Raw samples in seconds, by case key and metric (``wall``, ``workflow``, ``ttfb``,
    ``slurp``), as JSON-friendly dicts."""

    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, case: Case, metric: str, seconds: float) -> None:
        """Record one sample."""
        self.samples.setdefault(case.key, {}).setdefault(metric, []).append(seconds)

    def of(self, case: Case, metric: str) -> list[float]:
        """The samples of one metric of ``case`` (empty if none)."""
        return self.samples.get(case.key, {}).get(metric, [])

    def extend(self, other: RefSamples) -> None:
        """Add every sample of ``other``."""
        for key, metrics in other.samples.items():
            for metric, values in metrics.items():
                self.samples.setdefault(key, {}).setdefault(metric, []).extend(values)

    def to_json(self) -> dict[str, Any]:
        """The samples as a dict for ``json.dump``."""
        return {"samples": self.samples}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RefSamples:
        """The inverse of :meth:`to_json` (also reads the DBOS script's output)."""
        samples = {
            str(key): {str(m): [float(x) for x in v] for m, v in dict(metrics).items()}
            for key, metrics in dict(data.get("samples", {})).items()
        }
        return cls(samples)


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def _row(case: Case, metric: str, kind: str, engine: str, seconds: Sequence[float]) -> Row:
    return Row(
        suite=SUITE,
        store=kind,
        scenario=case.named(metric),
        size=case.size,
        unit="ms",
        median=stats.median(seconds) * 1000,
        p95=stats.p95(seconds) * 1000,
        samples=len(seconds),
        engine=engine,
        spread=stats.spread(seconds),
        p99=stats.scaled(stats.p99(seconds), 1000),
    )


def summarize(
    kind: str, raw: RefSamples, cases: Iterable[Case], engine: str = "actorflow"
) -> list[Row]:
    """Rows from raw samples: per case, the wall time (start → result in hand; the run's
    workflow time in its detail), the overhead above the sleep floor for an as-written
    form, and the time to first byte and slurp of a stream."""
    rows: list[Row] = []
    for case in cases:
        walls = raw.of(case, "wall")
        if not walls:
            continue
        row = _row(case, "", kind, engine, walls)
        detail = ["start() → result"]
        workflow = raw.of(case, "workflow")
        if workflow:
            row.extra["workflow_median_ms"] = stats.median(workflow) * 1000
            row.extra["workflow_p95_ms"] = stats.p95(workflow) * 1000
            detail.append(f"workflow time {_ms(stats.median(workflow))}")
        if case.sleep_ms and case.scenario == "stream":
            detail.append(f"chunks {case.sleep_ms:g} ms apart")
        elif case.sleep_ms:
            detail.append(f"sleeps {case.sleep_ms:g} ms a step")
        row.extra["detail"] = "; ".join(detail)
        rows.append(row)
        if case.floor_s:
            over = _row(case, "overhead", kind, engine, [w - case.floor_s for w in walls])
            over.extra["floor_ms"] = case.floor_s * 1000
            over.extra["detail"] = f"wall - the sleep floor ({_ms(case.floor_s)})"
            rows.append(over)
        for metric, text in (
            ("ttfb", "start() → first chunk at the reader"),
            ("slurp", "first → last chunk at the reader"),
        ):
            values = raw.of(case, metric)
            if values:
                extra = _row(case, metric, kind, engine, values)
                extra.extra["detail"] = text
                rows.append(extra)
    return rows


def compare(ours: Sequence[Row], peer: Sequence[Row]) -> list[Comparison]:
    """Pair rows by scenario and size; ours/peer of the medians (lower is better)."""
    theirs = {(r.scenario, r.size): r for r in peer}
    out: list[Comparison] = []
    for row in ours:
        other = theirs.get((row.scenario, row.size))
        if other is None:
            continue
        out.append(
            Comparison(
                scenario=row.scenario,
                size=row.size,
                store=row.store,
                unit=row.unit,
                ours_median=row.median,
                ours_p95=row.p95,
                peer_median=other.median,
                peer_p95=other.p95,
                better="lower",
            ).with_p99(row, other)
        )
    return out
