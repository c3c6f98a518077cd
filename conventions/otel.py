"""OpenTelemetry names the runtime uses: span attributes, span names, span events and metrics.

The runtime takes every telemetry name from here and writes none as a string literal, so that the
names stay consistent and documented in one place (the package README lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    # span attributes
    "WORKFLOW_NAME",
    "WORKFLOW_RUN_ID",
    "WORKFLOW_RUN_STATUS",
    "WORKFLOW_RUN_ATTEMPT",
    "WORKFLOW_RUN_RESUMED",
    "ANNOTATION_KEY",
    "ANNOTATION_VALUE",
    "WORKFLOW_STEP_NAME",
    "WORKFLOW_STEP_ID",
    "WORKFLOW_STEP_ATTEMPT",
    "WORKFLOW_WAIT_ID",
    "WORKFLOW_WAIT_RESUME_AT",
    "WORKFLOW_HOOK_TOKEN",
    "WORKFLOW_HOOK_ID",
    "WORKFLOW_RETRY_DELAY",
    "WORKFLOW_ERROR_CODE",
    "ERROR_TYPE",
    "WORKER_ID",
    # span names
    "RUN_SPAN",
    "STEP_SPAN",
    "START_SPAN",
    # span events
    "EVENT_WAIT_CREATED",
    "EVENT_WAIT_COMPLETED",
    "EVENT_HOOK_CREATED",
    "EVENT_HOOK_RECEIVED",
    "EVENT_STEP_RETRYING",
    "EVENT_ANNOTATION",
    # metrics
    "METRIC_RUNS_STARTED",
    "METRIC_RUNS_COMPLETED",
    "METRIC_RUNS_FAILED",
    "METRIC_RUNS_CANCELLED",
    "METRIC_STEP_DURATION",
    "METRIC_STEP_ATTEMPTS",
    "METRIC_BATCH_SIZE",
    "METRIC_COMMIT_LATENCY",
    "METRIC_ACTORS_LIVE",
    "METRIC_ACTORS_PASSIVATED",
    # reference engine
    "REFERENCE_NAMES",
]

# --- span attributes -------------------------------------------------------------------------

WORKFLOW_NAME: Final = "workflow.name"
"""The workflow's registered name."""
WORKFLOW_RUN_ID: Final = "workflow.run.id"
"""The run's id."""
WORKFLOW_RUN_STATUS: Final = "workflow.run.status"
"""The run's status when the span ends: ``completed``, ``failed``, ``cancelled``..."""
WORKFLOW_RUN_ATTEMPT: Final = "workflow.run.attempt"
"""The run's rerun generation (0 for the first execution)."""
WORKFLOW_RUN_RESUMED: Final = "workflow.run.resumed"
"""Whether a run segment continues a run that had started before (recovery, wake-up)."""
ANNOTATION_KEY: Final = "annotation.key"
"""On an ``annotation`` span event: the annotation's key."""
ANNOTATION_VALUE: Final = "annotation.value"
"""On an ``annotation`` span event: the annotation's value, as text."""
"""The run's rerun generation: 0 for the first execution, +1 per rerun."""
WORKFLOW_STEP_NAME: Final = "workflow.step.name"
"""The step's name."""
WORKFLOW_STEP_ID: Final = "workflow.step.id"
"""The step's id within its run."""
WORKFLOW_STEP_ATTEMPT: Final = "workflow.step.attempt"
"""The step attempt the span covers, as the store numbers it."""
WORKFLOW_WAIT_ID: Final = "workflow.wait.id"
"""The id of a durable wait (sleep or timer)."""
WORKFLOW_WAIT_RESUME_AT: Final = "workflow.wait.resume_at"
"""When a wait resumes, as an ISO 8601 timestamp."""
WORKFLOW_HOOK_TOKEN: Final = "workflow.hook.token"
"""The token an external caller uses to deliver to a hook."""
WORKFLOW_HOOK_ID: Final = "workflow.hook.id"
"""The id of a hook."""
WORKFLOW_RETRY_DELAY: Final = "workflow.retry.delay"
"""Seconds until a failed step is retried."""
WORKFLOW_ERROR_CODE: Final = "workflow.error.code"
"""The engine's error code for a failure."""
ERROR_TYPE: Final = "error.type"
"""The exception's qualified class name (OpenTelemetry's general ``error.type``)."""
WORKER_ID: Final = "workflow.worker.id"
"""The id of the worker process executing the run or step."""

# --- span names (prefixes) -------------------------------------------------------------------

RUN_SPAN: Final = "workflow.run"
"""Name prefix of the span covering one execution of a run."""
STEP_SPAN: Final = "workflow.step"
"""Name prefix of the span covering one step attempt."""
START_SPAN: Final = "workflow.start"
"""Name prefix of the span of ``Runtime.start()`` recording a run (parent of its segments)."""

# --- span events -----------------------------------------------------------------------------

EVENT_WAIT_CREATED: Final = "wait_created"
"""A durable wait was created."""
EVENT_WAIT_COMPLETED: Final = "wait_completed"
"""A durable wait completed."""
EVENT_HOOK_CREATED: Final = "hook_created"
"""A hook was created."""
EVENT_HOOK_RECEIVED: Final = "hook_received"
"""A hook received a delivery."""
EVENT_STEP_RETRYING: Final = "step_retrying"
"""A step failed and will be retried."""
EVENT_ANNOTATION: Final = "annotation"
"""An annotation made in a step, recorded on the step span (for values that are not scalars)."""

# --- metrics ---------------------------------------------------------------------------------

METRIC_RUNS_STARTED: Final = "workflow.runs.started"
"""Counter: runs started."""
METRIC_RUNS_COMPLETED: Final = "workflow.runs.completed"
"""Counter: runs completed successfully."""
METRIC_RUNS_FAILED: Final = "workflow.runs.failed"
"""Counter: runs failed."""
METRIC_RUNS_CANCELLED: Final = "workflow.runs.cancelled"
"""Counter: runs cancelled."""
METRIC_STEP_DURATION: Final = "workflow.step.duration"
"""Histogram: seconds per step attempt."""
METRIC_STEP_ATTEMPTS: Final = "workflow.step.attempts"
"""Counter: step attempts."""
METRIC_BATCH_SIZE: Final = "workflow.batch.size"
"""Histogram: writes per committed batch."""
METRIC_COMMIT_LATENCY: Final = "workflow.batch.commit.duration"
"""Histogram: seconds per batch commit."""
METRIC_ACTORS_LIVE: Final = "workflow.actors.live"
"""Up-down counter: actors in memory."""
METRIC_ACTORS_PASSIVATED: Final = "workflow.actors.passivated"
"""Counter: actors passivated (evicted from memory)."""

# --- reference engine ------------------------------------------------------------------------

REFERENCE_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "workflow.run.id": WORKFLOW_RUN_ID,
        "step.name": WORKFLOW_STEP_NAME,
        "step.id": WORKFLOW_STEP_ID,
    }
)
"""The reference engine's span attribute names, mapped to the names used here."""
