"""OpenTelemetry: the span tree of a run, its trace across restarts, metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from conventions import Decision, otel
from persistence import Store
from runtime import Runtime, annotate, create_hook, sleep, step, step_metadata, workflow

pytestmark = pytest.mark.anyio


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


USER_PROVIDER = TracerProvider()
USER_SPANS = InMemorySpanExporter()
USER_PROVIDER.add_span_processor(SimpleSpanProcessor(USER_SPANS))


@step
async def fetch_item() -> str:
    # an instrumented library uses the current context: its span nests under the step's
    with USER_PROVIDER.get_tracer("user-code").start_as_current_span("user.http.get"):
        pass
    annotate(Decision.confidence, 0.9)
    annotate("acme.tags", ["a", "b"])
    annotate("acme.detail", {"nested": True})
    return "item"


@step(max_retries=2, retry_delay=0.01)
async def flaky_pay(item: str) -> str:
    if step_metadata().attempt == 1:
        raise ConnectionError("gateway timeout")
    return f"paid {item}"


@step
async def ship(receipt: str) -> str:
    return f"shipped after {receipt}"


@workflow
async def three_steps() -> str:
    item = await fetch_item()
    receipt = await flaky_pay(item)
    await sleep(0.05)
    return await ship(receipt)


def by_name(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_the_span_tree_of_a_run(shared_store: Store) -> None:
    tracer_provider, exporter = provider()
    tracer = tracer_provider.get_tracer("test")
    async with Runtime(
        shared_store, workflows=[three_steps], tracer_provider=tracer_provider, worker_id="w-7"
    ) as rt:
        with tracer.start_as_current_span("http.request") as request:
            run = await rt.start(three_steps)
        assert await run.result(timeout=10) == "shipped after paid item"
    spans = exporter.get_finished_spans()
    (segment,) = by_name(spans, "workflow.run ")
    (starting,) = by_name(spans, "workflow.start ")
    assert segment.name == f"workflow.run {three_steps.name}"
    assert starting.parent is not None
    assert starting.parent.span_id == request.get_span_context().span_id
    assert segment.parent is not None and segment.parent.span_id == starting.context.span_id
    assert segment.context.trace_id == request.get_span_context().trace_id
    assert segment.attributes is not None
    assert segment.attributes[otel.WORKFLOW_RUN_ID] == run.id
    assert segment.attributes[otel.WORKFLOW_RUN_STATUS] == "completed"
    assert segment.attributes[otel.WORKER_ID] == "w-7"
    assert [e.name for e in segment.events] == [otel.EVENT_WAIT_CREATED, otel.EVENT_WAIT_COMPLETED]
    steps = by_name(spans, "workflow.step ")
    assert [s.name for s in steps] == [
        f"workflow.step {fetch_item.name}",
        f"workflow.step {flaky_pay.name}",
        f"workflow.step {flaky_pay.name}",
        f"workflow.step {ship.name}",
    ]
    for span in steps:
        assert span.parent is not None and span.parent.span_id == segment.context.span_id
        assert span.attributes is not None
        assert span.attributes[otel.WORKFLOW_RUN_ID] == run.id
        assert span.attributes[otel.WORKFLOW_STEP_ID].startswith("step_")  # type: ignore[union-attr]
        assert span.attributes[otel.WORKER_ID] == "w-7"
    failed, retried = steps[1], steps[2]
    assert failed.attributes[otel.WORKFLOW_STEP_ATTEMPT] == 1  # type: ignore[index]
    assert retried.attributes[otel.WORKFLOW_STEP_ATTEMPT] == 2  # type: ignore[index]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[otel.ERROR_TYPE] == "ConnectionError"  # type: ignore[index]
    assert [e.name for e in failed.events] == ["exception", otel.EVENT_STEP_RETRYING]
    assert retried.status.status_code is StatusCode.UNSET
    # a user span inside a step nests under the step span
    user = USER_SPANS.get_finished_spans()[-1]
    assert user.name == "user.http.get"
    assert user.parent is not None and user.parent.span_id == steps[0].context.span_id
    # annotations made in the step are on its span
    assert steps[0].attributes[Decision.confidence.key] == 0.9  # type: ignore[index]
    assert steps[0].attributes["acme.tags"] == ("a", "b")  # type: ignore[index]
    notes = [e for e in steps[0].events if e.name == otel.EVENT_ANNOTATION]
    assert notes and notes[0].attributes[otel.ANNOTATION_KEY] == "acme.detail"  # type: ignore[index]
    # no inputs, outputs or payloads as attributes
    for span in spans:
        for value in (span.attributes or {}).values():
            assert "paid item" not in str(value) and "shipped" not in str(value)


@workflow
async def naps() -> str:
    first = await fetch_item()
    await sleep(0.3)
    return await ship(first)


async def test_a_resumed_segment_links_back_and_replays_make_no_spans(shared_store: Store) -> None:
    tracer_provider, exporter = provider()
    async with Runtime(
        shared_store, workflows=[naps], tracer_provider=tracer_provider, passivate_after=0.05
    ) as rt:
        run = await rt.start(naps)
        assert await run.result(timeout=10) == "shipped after item"
    spans = exporter.get_finished_spans()
    segments = by_name(spans, "workflow.run ")
    assert len(segments) == 2
    first, second = segments
    assert first.attributes[otel.WORKFLOW_RUN_STATUS] == "passivated"  # type: ignore[index]
    assert second.attributes[otel.WORKFLOW_RUN_RESUMED] is True  # type: ignore[index]
    assert second.links and second.links[0].context.span_id == first.context.span_id
    assert first.context.trace_id == second.context.trace_id
    steps = by_name(spans, "workflow.step ")
    assert [s.name for s in steps] == [
        f"workflow.step {fetch_item.name}",
        f"workflow.step {ship.name}",
    ]


async def test_metrics_are_recorded(shared_store: Store) -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    async with Runtime(shared_store, workflows=[three_steps], meter_provider=meter_provider) as rt:
        run = await rt.start(three_steps)
        await run.result(timeout=10)
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, Any] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = metric.data.data_points
    assert points[otel.METRIC_RUNS_STARTED][0].value == 1
    assert points[otel.METRIC_RUNS_COMPLETED][0].value == 1
    assert points[otel.METRIC_RUNS_COMPLETED][0].attributes == {
        otel.WORKFLOW_NAME: three_steps.name
    }
    attempts = {
        p.attributes[otel.WORKFLOW_STEP_NAME]: p.value for p in points[otel.METRIC_STEP_ATTEMPTS]
    }
    assert attempts[flaky_pay.name] == 2 and attempts[ship.name] == 1
    assert sum(p.count for p in points[otel.METRIC_STEP_DURATION]) == 4
    assert points[otel.METRIC_BATCH_SIZE][0].count >= 4
    assert points[otel.METRIC_COMMIT_LATENCY][0].count >= 4
    assert points[otel.METRIC_ACTORS_LIVE][0].value == 0


@workflow
async def waits_for_a_payload(token: str) -> object:
    return await create_hook(token=token)


async def test_runs_ended_while_passivated_leave_no_passivated_actors(shared_store: Store) -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    async with Runtime(
        shared_store,
        workflows=[waits_for_a_payload],
        meter_provider=meter_provider,
        passivate_after=0,
    ) as rt:
        runs = [await rt.start(waits_for_a_payload, f"gauge-{i}") for i in range(5)]
        with anyio.fail_after(10):
            while rt.stats()["live_runs"] or rt.stats()["hooks"] < 5:
                await anyio.sleep(0.01)
        assert gauge(reader, otel.METRIC_ACTORS_PASSIVATED) == 5
        async with Runtime(shared_store, role="client") as client:  # cancelled elsewhere
            for run in runs:
                await client.cancel(run.id)
        with anyio.fail_after(10):
            while rt.stats()["hooks"]:
                await anyio.sleep(0.01)
        assert gauge(reader, otel.METRIC_ACTORS_PASSIVATED) == 0
        assert gauge(reader, otel.METRIC_ACTORS_LIVE) == 0


def gauge(reader: InMemoryMetricReader, name: str) -> int:
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    return int(sum(p.value for p in metric.data.data_points))
    return 0


async def test_without_providers_nothing_is_traced(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[three_steps]) as rt:
        assert rt.telemetry is not None and not rt.telemetry.active
        run = await rt.start(three_steps)
        assert await run.result(timeout=10) == "shipped after paid item"


EXPORTING_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, pathlib
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from runtime import Runtime, step, workflow

    out = pathlib.Path(sys.argv[2])

    class FileExporter(SpanExporter):
        def export(self, spans):
            with out.open("a") as f:
                for s in spans:
                    f.write(json.dumps({"name": s.name, "trace": s.context.trace_id}) + "\\n")
            return SpanExportResult.SUCCESS

    @step(name="resume:first")
    async def first() -> int:
        return 1

    @step(name="resume:second")
    async def second(x: int) -> int:
        marker = out.with_suffix(".inside")
        if not out.with_suffix(".resume").exists():
            marker.write_text("yes")
            await asyncio.sleep(60)
        return x + 1

    @workflow(name="otel:crash")
    async def crash() -> int:
        return await second(await first())

    async def main():
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(FileExporter()))
        tracer = tp.get_tracer("starter")
        async with Runtime(sys.argv[1], workflows=[crash], tracer_provider=tp) as rt:
            with tracer.start_as_current_span("starter"):
                await rt.start(crash, run_id="otel-crash")
            await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_the_trace_survives_a_kill_and_a_restart(tmp_path: Path) -> None:
    from tests.conftest import fresh_url

    url = fresh_url("sqlite", tmp_path)
    script = tmp_path / "worker.py"
    script.write_text(EXPORTING_WORKER)
    spans_file = tmp_path / "spans.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, str(script), url, str(spans_file)], env=env)
    try:
        with anyio.fail_after(30):
            while not spans_file.with_suffix(".inside").exists():
                assert child.poll() is None
                await anyio.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    before = [json.loads(line) for line in spans_file.read_text().splitlines()]
    (starter,) = [s for s in before if s["name"] == "starter"]
    spans_file.with_suffix(".resume").write_text("yes")
    tracer_provider, exporter = provider()
    async with Runtime(url, tracer_provider=tracer_provider, workflows=[resume_crash]) as rt:
        assert await rt.get_run("otel-crash").result(timeout=30) == 2
    after = exporter.get_finished_spans()
    segment = by_name(after, "workflow.run ")[0]
    assert segment.context.trace_id == starter["trace"]
    assert segment.attributes[otel.WORKFLOW_RUN_RESUMED] is True  # type: ignore[index]
    assert [s.name for s in by_name(after, "workflow.step ")] == ["workflow.step resume:second"]


@step(name="resume:first")
async def resume_first() -> int:
    return 1


@step(name="resume:second")
async def resume_second(x: int) -> int:
    return x + 1


@workflow(name="otel:crash")
async def resume_crash() -> int:
    return await resume_second(await resume_first())
