"""The event model: the envelope every event shares and one data type per event type.

Events are facts once committed; they are frozen msgspec Structs, left out of the cycle
collector (``gc=False``: they hold values and other records, never anything that points
back at them), so thousands of live runs do not slow every collection. Payloads the user supplied
(workflow input, step results, hook payloads) are kept as encoded bytes (see ``codec``), so a
store never needs the user's types to read or write an event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal, TypeAlias

import msgspec

SPEC_VERSION: Final = 1
"""The event-log format this code writes and understands."""


class ErrorInfo(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """An error as recorded in the log: message, exception type name, traceback text, code."""

    message: str
    type: str = "Exception"
    traceback: str | None = None
    code: str | None = None


class _Data(msgspec.Struct, frozen=True, gc=False, omit_defaults=True, tag_field="type"):
    """Base of the event data types; the tag is the event type."""


class RunCreated(_Data, frozen=True, tag="run_created"):
    workflow_name: str
    input: bytes
    execution_context: dict[str, str] = {}
    metadata: bytes | None = None
    parent_run_id: str | None = None
    parent_hook_id: str | None = None
    seed: bytes | None = None
    """A secret drawn when the run was created: seeds the run's ``random()``/``uuid4()`` and
    its default hook tokens, so replays agree and outsiders cannot predict them."""


class RunStarted(_Data, frozen=True, tag="run_started"):
    worker_id: str | None = None


class RunCompleted(_Data, frozen=True, tag="run_completed"):
    output: bytes


class RunFailed(_Data, frozen=True, tag="run_failed"):
    error: ErrorInfo


class RunCancelled(_Data, frozen=True, tag="run_cancelled"):
    reason: str | None = None


class RunRerun(_Data, frozen=True, tag="run_rerun"):
    generation: int
    from_position: int
    from_step_id: str | None = None


class StepCreated(_Data, frozen=True, tag="step_created"):
    step_name: str
    input: bytes
    position: int
    generation: int = 0


class StepStarted(_Data, frozen=True, tag="step_started"):
    attempt: int | None = None


class StepCompleted(_Data, frozen=True, tag="step_completed"):
    result: bytes
    closes: tuple[str, ...] = ()
    """Streams the attempt closed: they close once this completion is stored."""


class StepRetrying(_Data, frozen=True, tag="step_retrying"):
    error: ErrorInfo
    retry_after: datetime | None = None


class StepFailed(_Data, frozen=True, tag="step_failed"):
    error: ErrorInfo
    attempts: int = 0
    closes: tuple[str, ...] = ()


class WaitCreated(_Data, frozen=True, tag="wait_created"):
    resume_at: datetime
    position: int
    generation: int = 0


class WaitCompleted(_Data, frozen=True, tag="wait_completed"):
    resume_at: datetime | None = None


class HookCreated(_Data, frozen=True, tag="hook_created"):
    token: str
    position: int
    generation: int = 0
    metadata: bytes | None = None


class HookReceived(_Data, frozen=True, tag="hook_received"):
    payload: bytes
    token: str | None = None
    idempotency_key: str | None = None
    """The sender's key: a second payload with the same key for the same hook is refused."""


class HookDisposed(_Data, frozen=True, tag="hook_disposed"):
    token: str | None = None


class HookConflict(_Data, frozen=True, tag="hook_conflict"):
    token: str
    conflicting_run_id: str
    position: int
    generation: int = 0


class AnnotationCreated(_Data, frozen=True, tag="annotation_created"):
    annotation_id: str
    key: str
    scope: str
    scope_id: str | None = None
    attempt: int = 0


EventData: TypeAlias = (
    RunCreated
    | RunStarted
    | RunCompleted
    | RunFailed
    | RunCancelled
    | RunRerun
    | StepCreated
    | StepStarted
    | StepCompleted
    | StepRetrying
    | StepFailed
    | WaitCreated
    | WaitCompleted
    | HookCreated
    | HookReceived
    | HookDisposed
    | HookConflict
    | AnnotationCreated
)

EventType: TypeAlias = Literal[
    "run_created",
    "run_started",
    "run_completed",
    "run_failed",
    "run_cancelled",
    "run_rerun",
    "step_created",
    "step_started",
    "step_completed",
    "step_retrying",
    "step_failed",
    "wait_created",
    "wait_completed",
    "hook_created",
    "hook_received",
    "hook_disposed",
    "hook_conflict",
    "annotation_created",
]

DATA_TYPES: Final[dict[str, type[EventData]]] = {
    cls.__struct_config__.tag: cls for cls in EventData.__args__
}
"""Event type name → its data class."""

EVENT_TYPES: Final = tuple(DATA_TYPES)

RUN_EVENTS: Final = frozenset(
    {"run_created", "run_started", "run_completed", "run_failed", "run_cancelled", "run_rerun"}
)
TERMINAL_RUN_EVENTS: Final = frozenset({"run_completed", "run_failed", "run_cancelled"})


def event_type_of(data: EventData) -> str:
    """The event type named by a data value's tag."""
    tag = type(data).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


class Event(msgspec.Struct, frozen=True, gc=False):
    """One committed fact in a run's log.

    ``event_id`` orders the run's log; ``correlation_id`` names the step, wait or hook the
    event is about (None for run events).
    """

    event_id: str
    run_id: str
    event_type: str
    correlation_id: str | None
    data: EventData
    created_at: datetime
    spec_version: int = SPEC_VERSION


class NewAnnotation(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """An annotation row to insert (its value already encoded)."""

    key: str
    value: bytes
    scope: str = "run"
    scope_id: str | None = None
    step_id: str | None = None
    attempt: int = 0
    actor_kind: str | None = None
    actor_id: str | None = None
    actor_version: str | None = None
    payload: bytes | None = None
    idempotency_key: str | None = None
    emit_event: bool = False


def check_owner(owner: str) -> str:
    """A lease owner: a worker id, never empty (the stores mark a run written without a claim
    as held by ``""``, "no lease yet"); ``ValueError`` otherwise."""
    if not isinstance(owner, str) or not owner:
        raise ValueError(f"a lease owner is a non-empty worker id, got {owner!r}")
    return owner


class LeaseClaim(msgspec.Struct, frozen=True, gc=False):
    """Take a new run's lease in the write that creates it: ``owner`` holds it for
    ``seconds`` from the commit (see ``NewEvent.claim``)."""

    owner: str
    seconds: float

    def __post_init__(self) -> None:
        check_owner(self.owner)


class NewEvent(msgspec.Struct, frozen=True, gc=False):
    """An event a writer asks a store to append; the store assigns its id.

    ``created_at`` is the writer's time of the fact (the store's clock if None).
    ``if_last_event_id`` makes the write conditional: it is refused with
    ``ConcurrentWriteError`` unless the run's last event is that one, or one this batch
    accepted from a request with the same condition (so a writer's group of events stays
    contiguous in the log and is never interleaved with another writer's).
    ``annotations`` are inserted with the event, only if it is accepted.
    ``requires_previous`` refuses the event unless the request just before it in the batch
    was accepted (a writer's second event that must not exist without its first).
    ``fence`` (a lease epoch) refuses it with ``LeaseLostError`` unless the run's lease is
    still at that epoch: a worker that lost a run's lease cannot write to it.
    ``claim``, on a ``run_created`` only, takes the run's lease in the same transaction (a
    store whose ``claims_in_write`` is true): the event is refused with
    ``EntityConflictError`` if another owner's lease on the id is live, and the epoch taken
    is in ``BatchResult.leases``. A worker's first write is then its only commit.
    """

    run_id: str
    data: EventData
    correlation_id: str | None = None
    spec_version: int = SPEC_VERSION
    annotations: tuple[NewAnnotation, ...] = ()
    created_at: datetime | None = None
    if_last_event_id: str | None = None
    requires_previous: bool = False
    fence: int | None = None
    claim: LeaseClaim | None = None

    @property
    def event_type(self) -> str:
        return event_type_of(self.data)


_data_encoder = msgspec.msgpack.Encoder()
_data_decoders = {name: msgspec.msgpack.Decoder(cls) for name, cls in DATA_TYPES.items()}


def encode_data(data: EventData) -> bytes:
    """The data of an event as msgpack bytes, for storage."""
    return _data_encoder.encode(data)


def decode_data(event_type: str, raw: bytes) -> EventData:
    """Decode stored event data; raises KeyError for an unknown type, msgspec errors if bad."""
    result: EventData = _data_decoders[event_type].decode(raw)
    return result
