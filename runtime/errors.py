"""The errors users see, and the failure codes of runs.

Store errors (``EntityConflictError``, ``RunExpiredError``, ``TooEarlyError``,
``RunNotSupportedError``, and by what the caller can do: ``StoreUnavailableError``, transient;
``StoreConfigurationError``, fix the configuration; ``StoreFullError``, free space) come from
``persistence`` and are re-exported here with the not-found errors and ``SerializationError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from actors.program import ProgramError, UnknownWorkflow
from persistence import ErrorInfo
from persistence.errors import (
    ConcurrentWriteError,
    EntityConflictError,
    HookNotFoundError,
    RunExpiredError,
    RunNotFoundError,
    RunNotSupportedError,
    SerializationError,
    StepNotFoundError,
    StoreConfigurationError,
    StoreFullError,
    StoreUnavailableError,
    StreamClosedError,
    TooEarlyError,
)

USER_ERROR: Final = "USER_ERROR"
RUNTIME_ERROR: Final = "RUNTIME_ERROR"
NON_DETERMINISM: Final = "NON_DETERMINISM"
CORRUPTED_EVENT_LOG: Final = "CORRUPTED_EVENT_LOG"
MAX_EVENTS_EXCEEDED: Final = "MAX_EVENTS_EXCEEDED"

__all__ = [
    "CORRUPTED_EVENT_LOG",
    "MAX_EVENTS_EXCEEDED",
    "NON_DETERMINISM",
    "RUNTIME_ERROR",
    "USER_ERROR",
    "AnnotationTypeError",
    "ConcurrentWriteError",
    "EntityConflictError",
    "FatalError",
    "HookConflictError",
    "HookNotFoundError",
    "NameTakenError",
    "NonDeterminismError",
    "RetryableError",
    "RunCancelledError",
    "RunExpiredError",
    "RunFailedError",
    "RunNotFoundError",
    "RunNotSupportedError",
    "RuntimeClosedError",
    "SerializationError",
    "StepFailedError",
    "StepNotFoundError",
    "StepNotRegisteredError",
    "StepTimeoutError",
    "StoreConfigurationError",
    "StoreFullError",
    "StoreUnavailableError",
    "StreamClosedError",
    "TooEarlyError",
    "WorkflowNotRegisteredError",
]


class FatalError(Exception):
    """Raised by a step to fail at once, without retries."""


class AnnotationTypeError(FatalError, TypeError):
    """``annotate()`` was called wrongly: a value of the wrong type for its key, a key that is
    not a string or a typed key, a key and ``attributes=`` together. A programmer error: in a
    step it fails the step at once (another attempt would fail the same way)."""


class RetryableError(Exception):
    """Raised by a step to be retried after ``retry_after`` (seconds, timedelta or datetime)."""

    def __init__(
        self, message: str = "", retry_after: float | timedelta | datetime | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StepTimeoutError(Exception):
    """A step attempt ran longer than its ``timeout``; counted as a failed attempt."""


class StepFailedError(Exception):
    """A step failed for good; raised in the workflow where it was awaited (catchable)."""

    def __init__(
        self,
        step_name: str,
        error_type: str,
        message: str,
        traceback: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(
            f"step {step_name!r} failed after {attempts} attempt(s): {error_type}: {message}"
        )
        self.step_name = step_name
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        self.attempts = attempts


class RunFailedError(Exception):
    """``Run.result()`` of a failed run: its ``code``, ``message`` and recorded ``cause``."""

    def __init__(
        self, run_id: str, code: str, message: str, cause: ErrorInfo | None = None
    ) -> None:
        super().__init__(f"run {run_id!r} failed ({code}): {message}")
        self.run_id = run_id
        self.code = code
        self.message = message
        self.cause = cause


class RunCancelledError(Exception):
    """``Run.result()`` of a cancelled run."""

    def __init__(self, run_id: str, reason: str | None = None) -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"run {run_id!r} was cancelled{detail}")
        self.run_id = run_id
        self.reason = reason


class HookConflictError(Exception):
    """Another live run holds the hook's token; raised where the hook is awaited."""

    def __init__(self, token: str, conflicting_run_id: str) -> None:
        super().__init__(f"hook token {token!r} is already in use by run {conflicting_run_id!r}")
        self.token = token
        self.conflicting_run_id = conflicting_run_id


class NonDeterminismError(ProgramError):
    """Replaying the workflow made different durable calls than its log records."""

    code = NON_DETERMINISM

    def __init__(self, position: int, expected: str, actual: str) -> None:
        super().__init__(
            f"non-determinism at durable call #{position}: the log has {expected}, the "
            f"workflow code made {actual}; workflow code must make the same calls in the "
            "same order on every replay (move I/O, clocks and randomness into steps or use "
            "runtime.now()/random()/uuid4())"
        )
        self.position = position
        self.expected = expected
        self.actual = actual


class CorruptedLogError(ProgramError):
    """The run's log holds an event the workflow's calls cannot explain."""

    code = CORRUPTED_EVENT_LOG


class WorkflowNotRegisteredError(UnknownWorkflow):
    """No workflow of that name is registered with this runtime."""

    code = RUNTIME_ERROR

    def __init__(self, name: str, hosted: Sequence[str] | None = None) -> None:
        message = f"workflow {name!r} is not registered with this runtime"
        if hosted is not None:
            message += (
                f", which hosts {', '.join(repr(n) for n in hosted)}"
                if hosted
                else ", which hosts no workflow"
            )
            same = [n for n in hosted if n.rpartition(":")[2] == name.rpartition(":")[2]]
            if same and name not in same:
                message += (
                    f" (not {same[0]!r}: a workflow's default name is module:qualname; "
                    "give it a fixed one with @workflow(name=...))"
                )
        super().__init__(f"{message}; pass it in Runtime(workflows=[...])")
        self.name = name
        self.hosted = None if hosted is None else tuple(hosted)


class StepNotRegisteredError(Exception):
    """No step of that name is known to this process."""

    def __init__(self, name: str) -> None:
        super().__init__(f"step {name!r} is not registered in this process (import its module)")
        self.name = name


class RuntimeClosedError(RuntimeError):
    """The runtime has left (or is leaving) its ``async with`` block: the call was not made,
    or its outcome is not known here (ask the store, or call again on a running runtime)."""


class NameTakenError(ValueError):
    """A second, different function was registered under a step or workflow name in use."""


class WorkflowIOError(RuntimeError):
    """Workflow code tried to do I/O, use threads or real timers: move that into a step."""
