"""The ``otel`` suite: what OpenTelemetry costs per step, with and without a provider.

The scenario is the runtime suite's sequential-steps gap (its workflow and its measuring
code, :func:`benchmarks.runtime_bench.measure_sequential`): runs of n no-op steps, the gap
between the entries of consecutive step bodies. It runs under three configurations, each on
a fresh store with its own ``Runtime``:

* ``baseline`` — ``Runtime(store, workflows)`` exactly as the runtime suite builds it;
* ``no_provider`` — (a) ``tracer_provider=None, meter_provider=None`` (the default: the
  API's proxies, so the runtime's telemetry is off);
* ``sdk`` — (b) an SDK ``TracerProvider`` whose ``BatchSpanProcessor`` feeds an exporter
  that counts and drops spans, and an SDK ``MeterProvider`` with an in-memory reader.

(a) and the baseline are the same configuration measured the same way, so their difference
is what "no measurable cost" looks like on this machine (the noise). The configurations take
turns in rounds, so a change in the machine's load hits all three alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from runtime import Runtime

from . import stats
from .config import Plan
from .model import Row, SuiteResult
from .progress import say
from .rows import ms_row
from .runtime_bench import measure_sequential
from .stores import each_store, fresh_store_url
from .workflows import WORKFLOWS

SUITE = "otel"
STORES = ("memory", "sqlite")
CONFIGS = ("baseline", "no_provider", "sdk")
SCENARIO_TIMEOUT = 300.0
DESCRIPTIONS = {
    "baseline": "Runtime(store, workflows), as the runtime suite measures it",
    "no_provider": "(a) tracer_provider=None, meter_provider=None: telemetry off",
    "sdk": "(b) SDK TracerProvider + BatchSpanProcessor (dropping exporter), "
    "SDK MeterProvider + InMemoryMetricReader",
}


class DroppingExporter(SpanExporter):
    """A span exporter that counts the spans it is given and drops them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count ``spans`` and drop them."""
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


@dataclass
class ConfigSamples:
    """Gaps (seconds) pooled over rounds, and the median gap of each round."""

    gaps: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)
    walls_per_step: list[float] = field(default_factory=list)
    spans: int = 0


@asynccontextmanager
async def configured_runtime(
    config: str, url: str
) -> AsyncIterator[tuple[Runtime, DroppingExporter]]:
    """A Runtime on ``url`` in ``config``, and the exporter (used by ``sdk`` only)."""
    exporter = DroppingExporter()
    if config == "baseline":
        async with Runtime(store=url, workflows=WORKFLOWS) as rt:
            yield rt, exporter
        return
    if config == "no_provider":
        async with Runtime(
            store=url, workflows=WORKFLOWS, tracer_provider=None, meter_provider=None
        ) as rt:
            yield rt, exporter
        return
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    try:
        async with Runtime(
            store=url,
            workflows=WORKFLOWS,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        ) as rt:
            yield rt, exporter
    finally:
        tracer_provider.force_flush()
        tracer_provider.shutdown()
        meter_provider.shutdown()


async def measure_config(
    kind: str, postgres: str | None, config: str, n: int, repeat: int, into: ConfigSamples
) -> None:
    """One block: ``repeat`` runs of ``n`` steps in ``config`` on a fresh store."""
    async with fresh_store_url(kind, postgres) as url:
        async with configured_runtime(config, url) as (rt, exporter):
            assert rt.telemetry is not None
            wanted = config == "sdk"
            if rt.telemetry.active != wanted or (wanted and not rt.telemetry.tracing):
                raise RuntimeError(
                    f"{config}: telemetry is {'on' if rt.telemetry.active else 'off'} "
                    "(is a global OpenTelemetry provider configured?)"
                )
            try:
                async with asyncio.timeout(SCENARIO_TIMEOUT):
                    gaps, _, walls = await measure_sequential(rt, n, repeat)
            except TimeoutError:
                message = f"{config} took over {SCENARIO_TIMEOUT:.0f} s (a hang?)"
                raise TimeoutError(message) from None
        pooled = [g for rep in gaps for g in rep]
        into.gaps.extend(pooled)
        into.round_medians.append(stats.median(pooled))
        into.walls_per_step.extend(w / n for w in walls)
        into.spans += exporter.spans


async def measure(kind: str, postgres: str | None, plan: Plan) -> dict[str, ConfigSamples]:
    """Every configuration on ``kind``, taking turns for ``plan.otel_rounds`` rounds."""
    samples = {config: ConfigSamples() for config in CONFIGS}
    for round_index in range(plan.otel_rounds):
        for config in CONFIGS:
            await measure_config(
                kind, postgres, config, plan.otel_steps, plan.otel_repeat, samples[config]
            )
        say(f"otel {kind} round {round_index + 1}/{plan.otel_rounds}: done")
    if samples["sdk"].spans == 0:
        raise RuntimeError("the SDK configuration exported no span: tracing was not in effect")
    return samples


def _signed(value: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f}"


def _cost_row(
    kind: str, scenario: str, n: int, base: ConfigSamples, other: ConfigSamples, what: str
) -> Row:
    base_ms, other_ms = stats.median(base.gaps) * 1000, stats.median(other.gaps) * 1000
    per_round = [
        (b - a) * 1e6 for a, b in zip(base.round_medians, other.round_medians, strict=True)
    ]
    row = Row(
        suite=SUITE,
        store=kind,
        scenario=scenario,
        size=n,
        unit="µs/step",
        median=(other_ms - base_ms) * 1000,
        p95=None,
        samples=len(per_round),
    )
    row.ratio = other_ms / base_ms
    walls = (stats.median(other.walls_per_step) - stats.median(base.walls_per_step)) * 1e6
    row.extra["detail"] = (
        f"{what}: {_signed((row.ratio - 1) * 100, 1)} % of the gap; per round "
        f"{', '.join(_signed(d) for d in per_round)} µs; wall/step {_signed(walls)} µs"
    )
    row.extra["per_round_us"] = ", ".join(f"{d:.3f}" for d in per_round)
    return row


def summarize(kind: str, n: int, samples: dict[str, ConfigSamples]) -> list[Row]:
    """A gap row per configuration, then the cost of (a) and of (b) per step."""
    rows: list[Row] = []
    for config in CONFIGS:
        detail = DESCRIPTIONS[config]
        if config == "sdk":
            detail += f"; {samples[config].spans:,} spans exported"
        rows.append(ms_row(SUITE, kind, f"seq_gap_{config}", n, samples[config].gaps, None, detail))
    rows.append(
        _cost_row(
            kind,
            "cost_no_provider",
            n,
            samples["baseline"],
            samples["no_provider"],
            "(a) - baseline",
        )
    )
    rows.append(_cost_row(kind, "cost_sdk", n, samples["no_provider"], samples["sdk"], "(b) - (a)"))
    return rows


async def run_otel_suite(plan: Plan, stores: Sequence[str], postgres: str | None) -> SuiteResult:
    """Measure the per-step cost of telemetry on the memory store and SQLite."""
    out = SuiteResult(SUITE)
    out.notes.append(
        f"{plan.otel_rounds} round(s); in each, every configuration runs "
        f"{plan.otel_repeat} runs of {plan.otel_steps} sequential no-op steps on a fresh store "
        "(after one warm-up run), in the order baseline, (a), (b). seq_gap rows pool every "
        "gap; cost rows are differences of those medians (µs per step), with the difference "
        "of each round's medians. baseline and (a) are the same configuration: their "
        "difference is the measurement's noise."
    )
    for kind in stores:
        if kind not in STORES:
            out.skipped.append(f"{kind}: the otel suite measures {' and '.join(STORES)} only")

    async def measure_kind(kind: str) -> dict[str, ConfigSamples]:
        return await measure(kind, postgres, plan)

    measured = [kind for kind in stores if kind in STORES]
    async for kind, samples in each_store("otel", measured, postgres, out, measure_kind):
        out.rows.extend(summarize(kind, plan.otel_steps, samples))
    return out
