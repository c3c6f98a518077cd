"""The messages a run actor handles, and the work it hands to the step executor.

Messages that come from a caller carry a ``reply`` future; the core treats it as an opaque
handle and answers it through a ``Reply`` effect, once the write it asked for is a fact.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from persistence import ErrorInfo, NewAnnotation, NewEvent


@dataclass(frozen=True, slots=True)
class StepWork:
    """One attempt of a step body to run."""

    run_id: str
    step_id: str
    step_name: str
    input: bytes
    attempt: int
    started_at: datetime
    generation: int
    workflow_name: str
    run_started_at: datetime


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step attempt ended: ``completed`` (result), ``retry`` (after ``retry_after``) or
    ``failed`` (for good)."""

    step_id: str
    attempt: int
    kind: Literal["completed", "retry", "failed"]
    result: bytes | None = None
    error: ErrorInfo | None = None
    retry_after: datetime | None = None
    annotations: tuple[NewAnnotation, ...] = ()
    closes: tuple[str, ...] = ()
    """Streams the attempt closed; they close when its completion (or failure) is stored."""


@dataclass(frozen=True, slots=True)
class WaitDue:
    """A durable sleep's time came."""

    wait_id: str


@dataclass(frozen=True, slots=True)
class StepDue:
    """A pending step (created, or waiting to retry) may start now."""

    step_id: str


@dataclass(frozen=True, slots=True)
class HookPayload:
    """A payload for one of the run's hooks; ``reply`` gets the run id once it is recorded."""

    hook_id: str
    token: str
    payload: bytes
    reply: asyncio.Future[str]
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the run; ``reply`` gets True once ``run_cancelled`` is recorded, False if the run
    had already ended."""

    reason: str | None
    reply: asyncio.Future[bool]


@dataclass(frozen=True, slots=True)
class WakeUp:
    """End pending sleeps now (those named, or all); ``reply`` gets how many ended."""

    correlation_ids: frozenset[str] | None
    reply: asyncio.Future[int]


@dataclass(frozen=True, slots=True)
class Idle:
    """The run has been only waiting for ``passivate_after`` seconds since ``marker``."""

    marker: int


@dataclass(frozen=True, slots=True)
class Changed:
    """Another writer appended to the run's log: read and apply what is new."""


@dataclass(frozen=True, slots=True)
class Begin:
    """Start a new run: write these events (``run_created``, ``run_started``) with its first
    commands; ``reply`` gets True once committed, False if the run already existed."""

    events: tuple[NewEvent, ...]
    reply: asyncio.Future[bool]
    fence: int | None = None
    """The lease epoch the starting worker claimed the run at."""


@dataclass(frozen=True, slots=True)
class Drain:
    """The runtime is leaving: record what finishes, start no new step body, then stop."""


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """Another worker holds the run now: stop running it here, without writing."""


Message = (
    StepFinished
    | WaitDue
    | StepDue
    | HookPayload
    | Cancel
    | WakeUp
    | Changed
    | Idle
    | Begin
    | Drain
    | LeaseLost
)


class RunElsewhere(Exception):
    """The run is not executed by this worker (any more); ask the store instead."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} is executed by another worker")
        self.run_id = run_id
