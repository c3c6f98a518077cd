"""actorflow in one import: the public API of ``runtime``, the stores and their errors from
``persistence``, and the typed annotation keys of ``conventions``.

from actorflow import Runtime, sleep, step, workflow

The four packages (``conventions`` <- ``persistence`` <- ``actors`` <- ``runtime``) stay as
they are; this module only re-exports. Prefer it to ``import runtime``: a project's own
top-level ``runtime``, ``actors``, ``persistence`` or ``conventions`` package, found first on
the path, shadows ours, and ``actorflow`` is a name nobody else uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conventions import (
    Actor,
    Annotation,
    Approval,
    Decision,
    Failure,
    Namespace,
    Revision,
    Stability,
    Trigger,
    TypedKey,
    typed_key,
)
from persistence import (
    InvalidStoreURLError,
    MemoryStore,
    Store,
    StoreError,
    open_store,
)
from runtime import (
    AnnotationRecord,
    Annotations,
    AnnotationTypeError,
    ChildRun,
    EntityConflictError,
    FatalError,
    HookConflictError,
    HookInfo,
    HookNotFoundError,
    NameTakenError,
    NonDeterminismError,
    RetryableError,
    Run,
    RunCancelledError,
    RunExpiredError,
    RunFailedError,
    RunInfo,
    RunNotFoundError,
    RunNotSupportedError,
    RunStatus,
    Runtime,
    RuntimeClosedError,
    SerializationError,
    StepFailedError,
    StepFunction,
    StepMetadata,
    StepNotFoundError,
    StepNotRegisteredError,
    StepTimeoutError,
    StoreConfigurationError,
    StoreFullError,
    StoreUnavailableError,
    StreamClosedError,
    StreamWriter,
    TooEarlyError,
    WorkflowFunction,
    WorkflowHook,
    WorkflowMetadata,
    WorkflowNotRegisteredError,
    annotate,
    create_hook,
    current_runtime,
    get_writable,
    now,
    random,
    sleep,
    start_child,
    step,
    step_metadata,
    uuid4,
    workflow,
    workflow_metadata,
)

if TYPE_CHECKING:
    from persistence.postgres import PostgresStore
    from persistence.sqlite import SqliteStore

__all__ = [
    # runtime: the public API
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
    # persistence: stores and the errors a caller handles
    "InvalidStoreURLError",
    "MemoryStore",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "open_store",
    # conventions: typed annotation keys
    "Actor",
    "Annotation",
    "Approval",
    "Decision",
    "Failure",
    "Namespace",
    "Revision",
    "Stability",
    "Trigger",
    "TypedKey",
    "typed_key",
]


def __getattr__(name: str) -> Any:
    """Import the SQLite and PostgreSQL stores on first use, as ``open_store`` does."""
    if name == "SqliteStore":
        from persistence.sqlite import SqliteStore

        return SqliteStore
    if name == "PostgresStore":
        from persistence.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'actorflow' has no attribute {name!r}")
