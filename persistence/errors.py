"""Errors raised by the state machines and the stores.

A store refuses an illegal event with one of these; ``create_batch`` returns them as values,
one per refused event, and ``create`` raises them. Each message says what was refused and why.
"""

from __future__ import annotations

from datetime import datetime


class StoreError(Exception):
    """Base class of the errors a store or a state machine raises."""


class EntityConflictError(StoreError):
    """The event conflicts with the entity's state: a duplicate, or an illegal transition."""


class ConcurrentWriteError(EntityConflictError):
    """A conditional write found the run changed by another writer since it last looked."""


class PayloadRecordedError(EntityConflictError):
    """A payload with this idempotency key was already recorded for the hook: the first
    write of a key wins, and a retry changes nothing."""

    def __init__(self, token: str, key: str, run_id: str) -> None:
        super().__init__(
            f"a payload with idempotency key {key!r} was already recorded for hook {token!r}"
        )
        self.token = token
        self.key = key
        self.run_id = run_id


class RunExpiredError(StoreError):
    """The run has ended; the event can no longer be accepted."""


class TooEarlyError(StoreError):
    """A step was started before its retry time."""

    def __init__(self, message: str, retry_after: datetime) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RunNotSupportedError(StoreError):
    """The event or run was written by a newer version of actorflow than this one."""

    def __init__(self, spec_version: int, supported: int) -> None:
        super().__init__(
            f"spec version {spec_version} is newer than the {supported} this actorflow "
            "understands; upgrade actorflow to handle this run"
        )
        self.spec_version = spec_version
        self.supported = supported


class LeaseLostError(StoreError):
    """A fenced write came from a worker whose lease on the run has passed to another: the
    worker must stop running the run (its writes are refused)."""

    def __init__(self, run_id: str, fence: int, epoch: int | None) -> None:
        held = f"epoch {epoch}" if epoch is not None else "no lease"
        super().__init__(
            f"run {run_id!r} is no longer this worker's: its write was fenced with lease "
            f"epoch {fence}, the run's lease is at {held}"
        )
        self.run_id = run_id
        self.fence = fence
        self.epoch = epoch


class StoreUnavailableError(StoreError):
    """The store could not be reached or was busy; the operation may be retried.

    Transient: a lost or refused connection, a locked or busy file, a timeout, a server
    with no connection to spare. The same call succeeds once the store is back.
    """


class StoreConfigurationError(StoreError):
    """The store cannot work until its configuration is fixed; retrying will not help.

    A missing database, role or file, a file that is not a database, no permission, a
    read-only file or directory. The message names what is wrong and what to fix.
    """


class StoreFullError(StoreError):
    """The disk or database is full; writes succeed again once space is freed."""


class EntityNotFoundError(StoreError):
    """The entity the event refers to does not exist."""


class RunNotFoundError(EntityNotFoundError):
    """No run has this id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} not found")
        self.run_id = run_id


class StepNotFoundError(EntityNotFoundError):
    """The run has no step with this id (or name)."""

    def __init__(self, run_id: str, step: str) -> None:
        super().__init__(f"run {run_id!r} has no step {step!r}")
        self.run_id = run_id
        self.step = step


class WaitNotFoundError(EntityNotFoundError):
    """The run has no wait with this id."""

    def __init__(self, run_id: str, wait_id: str) -> None:
        super().__init__(f"run {run_id!r} has no wait {wait_id!r}")
        self.run_id = run_id
        self.wait_id = wait_id


class HookNotFoundError(EntityNotFoundError):
    """No live hook has this token (or id): unknown, disposed, or its run has ended."""

    def __init__(self, token: str) -> None:
        super().__init__(f"no live hook with token {token!r}")
        self.token = token


class CorruptedDataError(StoreError):
    """A stored row could not be read back: unknown event type or undecodable data."""

    def __init__(self, run_id: str, event_id: str | None, detail: str) -> None:
        where = f"event {event_id!r} of run {run_id!r}" if event_id else f"run {run_id!r}"
        super().__init__(f"corrupted data in {where}: {detail}")
        self.run_id = run_id
        self.event_id = event_id


class SerializationError(TypeError):
    """A value cannot be encoded (or decoded) with actorflow's codec."""


class InvalidStoreURLError(ValueError):
    """A store URL has an unknown scheme or is malformed."""


class StreamClosedError(StoreError):
    """The stream was closed; nothing more can be written to it."""

    def __init__(self, run_id: str, stream: str) -> None:
        name = repr(stream) if stream else "the default stream"
        super().__init__(f"{name} of run {run_id!r} is closed")
        self.run_id = run_id
        self.stream = stream
