"""The OpenTelemetry names: exact values, exported from the package, well formed."""

from __future__ import annotations

import re

import conventions
from conventions import otel

ATTRIBUTES = {
    "WORKFLOW_NAME": "workflow.name",
    "WORKFLOW_RUN_ID": "workflow.run.id",
    "WORKFLOW_RUN_STATUS": "workflow.run.status",
    "WORKFLOW_RUN_ATTEMPT": "workflow.run.attempt",
    "WORKFLOW_RUN_RESUMED": "workflow.run.resumed",
    "ANNOTATION_KEY": "annotation.key",
    "ANNOTATION_VALUE": "annotation.value",
    "WORKFLOW_STEP_NAME": "workflow.step.name",
    "WORKFLOW_STEP_ID": "workflow.step.id",
    "WORKFLOW_STEP_ATTEMPT": "workflow.step.attempt",
    "WORKFLOW_WAIT_ID": "workflow.wait.id",
    "WORKFLOW_WAIT_RESUME_AT": "workflow.wait.resume_at",
    "WORKFLOW_HOOK_TOKEN": "workflow.hook.token",
    "WORKFLOW_HOOK_ID": "workflow.hook.id",
    "WORKFLOW_RETRY_DELAY": "workflow.retry.delay",
    "WORKFLOW_ERROR_CODE": "workflow.error.code",
    "ERROR_TYPE": "error.type",
    "WORKER_ID": "workflow.worker.id",
}
SPANS = {
    "RUN_SPAN": "workflow.run",
    "STEP_SPAN": "workflow.step",
    "START_SPAN": "workflow.start",
}
EVENTS = {
    "EVENT_WAIT_CREATED": "wait_created",
    "EVENT_WAIT_COMPLETED": "wait_completed",
    "EVENT_HOOK_CREATED": "hook_created",
    "EVENT_HOOK_RECEIVED": "hook_received",
    "EVENT_STEP_RETRYING": "step_retrying",
    "EVENT_ANNOTATION": "annotation",
}
METRICS = {
    "METRIC_RUNS_STARTED": "workflow.runs.started",
    "METRIC_RUNS_COMPLETED": "workflow.runs.completed",
    "METRIC_RUNS_FAILED": "workflow.runs.failed",
    "METRIC_RUNS_CANCELLED": "workflow.runs.cancelled",
    "METRIC_STEP_DURATION": "workflow.step.duration",
    "METRIC_STEP_ATTEMPTS": "workflow.step.attempts",
    "METRIC_BATCH_SIZE": "workflow.batch.size",
    "METRIC_COMMIT_LATENCY": "workflow.batch.commit.duration",
    "METRIC_ACTORS_LIVE": "workflow.actors.live",
    "METRIC_ACTORS_PASSIVATED": "workflow.actors.passivated",
}
ALL = ATTRIBUTES | SPANS | EVENTS | METRICS


def test_every_name_has_its_value() -> None:
    for constant, value in ALL.items():
        assert getattr(otel, constant) == value, constant


def test_the_module_defines_exactly_these_names() -> None:
    assert set(otel.__all__) == set(ALL) | {"REFERENCE_NAMES"}


def test_names_are_reexported_from_the_package() -> None:
    assert conventions.otel is otel
    for constant in otel.__all__:
        assert constant in conventions.__all__
        assert getattr(conventions, constant) is getattr(otel, constant)


def test_names_are_well_formed_and_distinct() -> None:
    dotted = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
    for value in (ATTRIBUTES | SPANS | METRICS).values():
        assert dotted.fullmatch(value), value
    for value in EVENTS.values():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", value), value
    assert len(set(ATTRIBUTES.values())) == len(ATTRIBUTES)
    assert len(set(METRICS.values())) == len(METRICS)


def test_reference_names() -> None:
    assert dict(otel.REFERENCE_NAMES) == {
        "workflow.run.id": "workflow.run.id",
        "step.name": "workflow.step.name",
        "step.id": "workflow.step.id",
    }
    assert set(otel.REFERENCE_NAMES.values()) <= set(ATTRIBUTES.values())
