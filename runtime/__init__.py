"""actorflow's public API: workflows, steps, durable sleep, hooks, annotations, the Runtime.

from runtime import workflow, step, sleep, Runtime

@step
async def charge(order_id: str) -> str: ...

@workflow
async def order_flow(order_id: str) -> str:
    receipt = await charge(order_id)
    await sleep("1h")
    return receipt

async with Runtime(workflows=[order_flow]) as rt:
    run = await rt.start(order_flow, "o-1")
    print(await run.result())
"""

from __future__ import annotations

from persistence import RunStatus

from .annotations import AnnotationRecord, Annotations
from .api import (
    annotate,
    create_hook,
    current_runtime,
    now,
    random,
    sleep,
    step_metadata,
    uuid4,
    workflow_metadata,
)
from .children import ChildRun, start_child
from .context import StepMetadata, WorkflowMetadata
from .errors import (
    AnnotationTypeError,
    EntityConflictError,
    FatalError,
    HookConflictError,
    HookNotFoundError,
    NameTakenError,
    NonDeterminismError,
    RetryableError,
    RunCancelledError,
    RunExpiredError,
    RunFailedError,
    RunNotFoundError,
    RunNotSupportedError,
    RuntimeClosedError,
    SerializationError,
    StepFailedError,
    StepNotFoundError,
    StepNotRegisteredError,
    StepTimeoutError,
    StoreConfigurationError,
    StoreFullError,
    StoreUnavailableError,
    StreamClosedError,
    TooEarlyError,
    WorkflowNotRegisteredError,
)
from .hooks import WorkflowHook
from .registry import StepFunction, WorkflowFunction, step, workflow
from .run import HookInfo, Run, RunInfo
from .runtime import Runtime
from .streams import StreamWriter, get_writable

__all__ = [
    "AnnotationRecord",
    "AnnotationTypeError",
    "Annotations",
    "ChildRun",
    "EntityConflictError",
    "FatalError",
    "HookConflictError",
    "HookInfo",
    "HookNotFoundError",
    "NameTakenError",
    "NonDeterminismError",
    "RetryableError",
    "Run",
    "RunCancelledError",
    "RunExpiredError",
    "RunFailedError",
    "RunInfo",
    "RunNotFoundError",
    "RunNotSupportedError",
    "RunStatus",
    "Runtime",
    "RuntimeClosedError",
    "SerializationError",
    "StepFailedError",
    "StepFunction",
    "StepMetadata",
    "StepNotFoundError",
    "StepNotRegisteredError",
    "StepTimeoutError",
    "StoreConfigurationError",
    "StoreFullError",
    "StoreUnavailableError",
    "StreamClosedError",
    "StreamWriter",
    "TooEarlyError",
    "WorkflowFunction",
    "WorkflowHook",
    "WorkflowMetadata",
    "WorkflowNotRegisteredError",
    "annotate",
    "create_hook",
    "current_runtime",
    "get_writable",
    "now",
    "random",
    "sleep",
    "start_child",
    "step",
    "step_metadata",
    "uuid4",
    "workflow",
    "workflow_metadata",
]
