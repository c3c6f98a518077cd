"""actorflow's persistence: the event model, the state machines and the stores.

Imports nothing of the rest of actorflow but ``conventions``. Open a store with
:func:`open_store` (``memory://``, ``sqlite:///path.db``, ``postgresql://...``).
"""

from __future__ import annotations

from .batch import plan_batch
from .codec import decode, encode
from .dormant import Dormant
from .errors import (
    ConcurrentWriteError,
    CorruptedDataError,
    EntityConflictError,
    EntityNotFoundError,
    HookNotFoundError,
    InvalidStoreURLError,
    LeaseLostError,
    PayloadRecordedError,
    RunExpiredError,
    RunNotFoundError,
    RunNotSupportedError,
    SerializationError,
    StepNotFoundError,
    StoreConfigurationError,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
    StreamClosedError,
    TooEarlyError,
    WaitNotFoundError,
)
from .events import (
    SPEC_VERSION,
    ErrorInfo,
    Event,
    EventData,
    LeaseClaim,
    NewAnnotation,
    NewEvent,
)
from .memory import MemoryStore
from .open import open_store, store_for
from .records import (
    AnnotationFilter,
    AnnotationRecord,
    AttachAnnotations,
    BatchResult,
    CommittedEvent,
    Lease,
    Page,
    StreamChunk,
    StreamInfo,
    WorkerInfo,
)
from .rules import apply, check, fold
from .state import (
    Hook,
    HookStatus,
    Run,
    RunState,
    RunStatus,
    Step,
    StepStatus,
    Wait,
    WaitStatus,
)
from .store import Store

__all__ = [
    "SPEC_VERSION",
    "AnnotationFilter",
    "Dormant",
    "AnnotationRecord",
    "AttachAnnotations",
    "BatchResult",
    "CommittedEvent",
    "ConcurrentWriteError",
    "CorruptedDataError",
    "EntityConflictError",
    "EntityNotFoundError",
    "ErrorInfo",
    "Event",
    "EventData",
    "Hook",
    "HookNotFoundError",
    "HookStatus",
    "InvalidStoreURLError",
    "Lease",
    "LeaseClaim",
    "LeaseLostError",
    "MemoryStore",
    "NewAnnotation",
    "NewEvent",
    "Page",
    "PayloadRecordedError",
    "Run",
    "RunExpiredError",
    "RunNotFoundError",
    "RunNotSupportedError",
    "RunState",
    "RunStatus",
    "SerializationError",
    "Step",
    "StepNotFoundError",
    "StepStatus",
    "Store",
    "StoreConfigurationError",
    "StoreError",
    "StoreFullError",
    "StoreUnavailableError",
    "StreamChunk",
    "StreamClosedError",
    "StreamInfo",
    "TooEarlyError",
    "Wait",
    "WaitNotFoundError",
    "WaitStatus",
    "WorkerInfo",
    "apply",
    "check",
    "decode",
    "encode",
    "fold",
    "open_store",
    "plan_batch",
    "store_for",
]
