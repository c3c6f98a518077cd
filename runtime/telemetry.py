"""OpenTelemetry: one trace per run across steps, retries, sleeps, restarts and processes.

``start()`` stores the caller's trace context in ``run_created``. Each *segment* of a run
(an actor holding it) is a ``workflow.run <name>`` span whose parent is that context, so a
run resumed after a restart, here or in another worker, stays in the starter's trace; a
segment links to the previous segment of the run when this process ran it. Each step
attempt is a ``workflow.step <name>`` span, child of the segment and current while the body
runs. Sleeps and hooks are span events on the segment; annotations made in a step go on the
step span. Replayed history makes no spans. Attribute names come from
``conventions.otel``; inputs, outputs and payloads are never recorded.

With no tracer or meter provider configured (the API's default proxies), none of this runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from actors.messages import StepWork
from conventions import otel
from persistence import Event, NewAnnotation, Run
from persistence import events as ev

from .context import StepContext

_SCALARS = (str, bool, int, float)


def capture_context() -> dict[str, str]:
    """The caller's trace context (W3C traceparent), to store with a new run."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def tracing_enabled(provider: Any) -> bool:
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def metrics_enabled(provider: Any) -> bool:
    """Whether ``provider`` records anything: not one the API package itself defines.

    The API defines only ``NoOpMeterProvider`` and the proxy that ``get_meter_provider()``
    returns until a provider is set (it has no public name); both record nothing. Only an
    implementation, such as the SDK's, does.
    """
    if isinstance(provider, metrics.NoOpMeterProvider):
        return False
    module = type(provider).__module__
    return module != metrics.__name__ and not module.startswith(f"{metrics.__name__}.")


class Telemetry:
    """Spans and metrics of one runtime (implements ``actors.observer.RunObserver``)."""

    def __init__(
        self, tracer_provider: Any = None, meter_provider: Any = None, worker_id: str = ""
    ) -> None:
        self.worker_id = worker_id
        """Set as ``workflow.worker.id`` on the run segments and step attempts of this worker."""
        tracer_provider = tracer_provider or trace.get_tracer_provider()
        meter_provider = meter_provider or metrics.get_meter_provider()
        self.tracing = tracing_enabled(tracer_provider)
        self.metering = metrics_enabled(meter_provider)
        self._tracer = tracer_provider.get_tracer("actorflow")
        self._segments: dict[str, Span] = {}
        self._previous: dict[str, trace.SpanContext] = {}
        meter = meter_provider.get_meter("actorflow")
        self._started = meter.create_counter(otel.METRIC_RUNS_STARTED, "{run}", "Runs started")
        self._ended = {
            "completed": meter.create_counter(
                otel.METRIC_RUNS_COMPLETED, "{run}", "Runs completed"
            ),
            "failed": meter.create_counter(otel.METRIC_RUNS_FAILED, "{run}", "Runs failed"),
            "cancelled": meter.create_counter(
                otel.METRIC_RUNS_CANCELLED, "{run}", "Runs cancelled"
            ),
        }
        self._step_duration = meter.create_histogram(
            otel.METRIC_STEP_DURATION, "s", "Duration of step attempts"
        )
        self._step_attempts = meter.create_counter(
            otel.METRIC_STEP_ATTEMPTS, "{attempt}", "Step attempts run"
        )
        self._batch_size = meter.create_histogram(
            otel.METRIC_BATCH_SIZE, "{request}", "Requests per create_batch"
        )
        self._commit_latency = meter.create_histogram(
            otel.METRIC_COMMIT_LATENCY, "s", "Latency of create_batch commits"
        )
        self._live = meter.create_up_down_counter(
            otel.METRIC_ACTORS_LIVE, "{actor}", "Run actors holding their run"
        )
        self._passivated = meter.create_up_down_counter(
            otel.METRIC_ACTORS_PASSIVATED, "{actor}", "Runs passivated by this runtime"
        )
        self._is_passivated: set[str] = set()

    @property
    def active(self) -> bool:
        return self.tracing or self.metering

    # -- the batcher ------------------------------------------------------------------------

    def batch_written(self, size: int, seconds: float) -> None:
        if self.metering:
            self._batch_size.record(size)
            self._commit_latency.record(seconds)

    @contextlib.contextmanager
    def starting(self, workflow_name: str, run_id: str) -> Iterator[None]:
        """Around ``start()``: a span the run's segments are children of, current while the
        caller's trace context is captured (so runs started outside any span still have
        one trace)."""
        if not self.tracing:
            yield
            return
        with self._tracer.start_as_current_span(
            f"{otel.START_SPAN} {workflow_name}",
            kind=SpanKind.PRODUCER,
            attributes={otel.WORKFLOW_NAME: workflow_name, otel.WORKFLOW_RUN_ID: run_id},
        ):
            yield

    def run_started(self, workflow_name: str) -> None:
        if self.metering:
            self._started.add(1, {otel.WORKFLOW_NAME: workflow_name})

    # -- run segments (RunObserver) -------------------------------------------------------------

    def segment_started(self, run: Run, resumed: bool) -> None:
        if self.metering:
            self._live.add(1)
            if run.run_id in self._is_passivated:
                self._is_passivated.discard(run.run_id)
                self._passivated.add(-1)
        if not self.tracing:
            return
        parent = propagate.extract(run.execution_context)
        previous = self._previous.pop(run.run_id, None)
        span = self._tracer.start_span(
            f"{otel.RUN_SPAN} {run.workflow_name}",
            context=parent,
            attributes={
                otel.WORKFLOW_NAME: run.workflow_name,
                otel.WORKFLOW_RUN_ID: run.run_id,
                otel.WORKFLOW_RUN_ATTEMPT: run.generation,
                otel.WORKFLOW_RUN_RESUMED: resumed,
                otel.WORKER_ID: self.worker_id,
            },
            links=[Link(previous)] if previous is not None else (),
        )
        self._segments[run.run_id] = span

    def committed(self, run: Run, events: Sequence[Event]) -> None:
        span = self._segments.get(run.run_id)
        if span is None:
            return
        for event in events:
            data = event.data
            if isinstance(data, ev.WaitCreated):
                span.add_event(
                    otel.EVENT_WAIT_CREATED,
                    {
                        otel.WORKFLOW_WAIT_ID: event.correlation_id or "",
                        otel.WORKFLOW_WAIT_RESUME_AT: data.resume_at.isoformat(),
                    },
                )
            elif isinstance(data, ev.WaitCompleted):
                span.add_event(
                    otel.EVENT_WAIT_COMPLETED, {otel.WORKFLOW_WAIT_ID: event.correlation_id or ""}
                )
            elif isinstance(data, ev.HookCreated):
                span.add_event(
                    otel.EVENT_HOOK_CREATED,
                    {
                        otel.WORKFLOW_HOOK_ID: event.correlation_id or "",
                        otel.WORKFLOW_HOOK_TOKEN: data.token,
                    },
                )
            elif isinstance(data, ev.HookReceived):
                span.add_event(
                    otel.EVENT_HOOK_RECEIVED, {otel.WORKFLOW_HOOK_ID: event.correlation_id or ""}
                )

    def segment_ended(self, run: Run | None, reason: str) -> None:
        if self.metering:
            self._live.add(-1)
            if reason in self._ended and run is not None:
                self._ended[reason].add(1, {otel.WORKFLOW_NAME: run.workflow_name})
            if reason == "passivated" and run is not None:
                self._is_passivated.add(run.run_id)
                self._passivated.add(1)
        if run is None:
            return
        span = self._segments.pop(run.run_id, None)
        if span is None:
            return
        span.set_attribute(otel.WORKFLOW_RUN_STATUS, reason)
        if reason == "failed" and run.error is not None:
            span.set_attribute(otel.ERROR_TYPE, run.error.type)
            if run.error.code:
                span.set_attribute(otel.WORKFLOW_ERROR_CODE, run.error.code)
            span.set_status(Status(StatusCode.ERROR, run.error.message))
        if reason in ("passivated", "stopped"):
            self._previous[run.run_id] = span.get_span_context()
        span.end()

    def released(self, run_id: str) -> None:
        """This runtime holds nothing more of the run (it ended, or went elsewhere)."""
        self._previous.pop(run_id, None)
        if run_id in self._is_passivated:
            self._is_passivated.discard(run_id)
            self._passivated.add(-1)

    # -- step attempts ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def step_attempt(self, work: StepWork, step: StepContext) -> Iterator[AttemptTrace]:
        """Around a step body: its span (current while it runs) and its metrics."""
        started = time.perf_counter()
        if self.metering:
            self._step_attempts.add(1, {otel.WORKFLOW_STEP_NAME: work.step_name})
        span: Span | None = None
        if self.tracing:
            segment = self._segments.get(work.run_id)
            parent = trace.set_span_in_context(segment) if segment is not None else None
            span = self._tracer.start_span(
                f"{otel.STEP_SPAN} {work.step_name}",
                context=parent,
                attributes={
                    otel.WORKFLOW_NAME: work.workflow_name,
                    otel.WORKFLOW_RUN_ID: work.run_id,
                    otel.WORKFLOW_STEP_NAME: work.step_name,
                    otel.WORKFLOW_STEP_ID: work.step_id,
                    otel.WORKFLOW_STEP_ATTEMPT: work.attempt,
                    otel.WORKFLOW_RUN_ATTEMPT: work.generation,
                    otel.WORKER_ID: self.worker_id,
                },
            )
            step.on_annotation = _on_annotation(span)
            token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield AttemptTrace(span)
        finally:
            if self.metering:
                self._step_duration.record(
                    time.perf_counter() - started, {otel.WORKFLOW_STEP_NAME: work.step_name}
                )
            if span is not None:
                otel_context.detach(token)
                span.end()


class AttemptTrace:
    """What the step runner reports about an attempt to its span."""

    __slots__ = ("_span",)

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def failed(self, error: BaseException) -> None:
        """The attempt raised: record the exception and an error status."""
        if self._span is not None:
            self._span.record_exception(error)
            self._span.set_attribute(otel.ERROR_TYPE, type(error).__name__)
            self._span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))

    def retrying(self, delay: float) -> None:
        """The attempt will be retried after ``delay`` seconds."""
        if self._span is not None:
            self._span.add_event(otel.EVENT_STEP_RETRYING, {otel.WORKFLOW_RETRY_DELAY: delay})


NO_TRACE = AttemptTrace(None)


def _on_annotation(span: Span) -> Any:
    def record(row: NewAnnotation, value: Any) -> None:
        if isinstance(value, _SCALARS) or (
            isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value) and value
        ):
            span.set_attribute(row.key, value)
        else:
            span.add_event(
                otel.EVENT_ANNOTATION,
                {otel.ANNOTATION_KEY: row.key, otel.ANNOTATION_VALUE: repr(value)},
            )

    return record
