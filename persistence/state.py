"""The entities of a run and the state that folds them: what a run, its steps, waits and hooks
are at any point of its log.

The entities are frozen msgspec structs (untracked by the cycle collector); a
:class:`RunState` holds a run and its entities, updated in place by
:func:`persistence.rules.apply`, which holds the rules of the log.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Final

import msgspec

from .events import SPEC_VERSION, ErrorInfo


class RunStatus(enum.StrEnum):
    """The status of a run. A ``str`` enum: ``status == "completed"`` holds."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: Final = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class WaitStatus(enum.StrEnum):
    WAITING = "waiting"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class HookStatus(enum.StrEnum):
    ACTIVE = "active"
    DISPOSED = "disposed"
    CONFLICTED = "conflicted"


# The entities, like events, are frozen records outside the cycle collector (gc=False).
class Run(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A workflow run, as its events made it."""

    run_id: str
    workflow_name: str
    status: RunStatus
    input: bytes
    created_at: datetime
    updated_at: datetime
    last_event_id: str
    event_count: int = 1
    output: bytes | None = None
    error: ErrorInfo | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    spec_version: int = SPEC_VERSION
    generation: int = 0
    execution_context: dict[str, str] = {}
    metadata: bytes | None = None
    parent_run_id: str | None = None
    parent_hook_id: str | None = None
    seed: bytes | None = None


class Step(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One durable step call of a run."""

    run_id: str
    step_id: str
    step_name: str
    status: StepStatus
    input: bytes
    position: int
    created_at: datetime
    updated_at: datetime
    generation: int = 0
    attempt: int = 0
    output: bytes | None = None
    error: ErrorInfo | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    retry_after: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in (StepStatus.COMPLETED, StepStatus.FAILED)


class Wait(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A durable sleep of a run."""

    run_id: str
    wait_id: str
    status: WaitStatus
    resume_at: datetime
    position: int
    created_at: datetime
    generation: int = 0
    completed_at: datetime | None = None


class Hook(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A hook: a token through which outside payloads reach a run."""

    run_id: str
    hook_id: str
    token: str
    status: HookStatus
    position: int
    created_at: datetime
    generation: int = 0
    metadata: bytes | None = None
    conflicting_run_id: str | None = None
    received: int = 0
    keys: tuple[str, ...] = ()
    """The idempotency keys of the payloads received (each is taken once)."""


class RunState:
    """The fold of one run's events: the run and its steps, waits and hooks.

    A store may hold a partial state (only the entities a batch refers to); the rules only
    ever look at the run and the entity an event names.
    """

    __slots__ = ("hooks", "run", "steps", "waits")

    def __init__(
        self,
        run: Run | None = None,
        steps: dict[str, Step] | None = None,
        waits: dict[str, Wait] | None = None,
        hooks: dict[str, Hook] | None = None,
    ) -> None:
        self.run = run
        self.steps: dict[str, Step] = steps if steps is not None else {}
        self.waits: dict[str, Wait] = waits if waits is not None else {}
        self.hooks: dict[str, Hook] = hooks if hooks is not None else {}

    def copy(self) -> RunState:
        """A shallow copy (entities are frozen, so this is a full snapshot)."""
        return RunState(self.run, dict(self.steps), dict(self.waits), dict(self.hooks))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunState):
            return NotImplemented
        return (self.run, self.steps, self.waits, self.hooks) == (
            other.run,
            other.steps,
            other.waits,
            other.hooks,
        )

    def __repr__(self) -> str:
        return (
            f"RunState(run={self.run!r}, steps={len(self.steps)}, waits={len(self.waits)}, "
            f"hooks={len(self.hooks)})"
        )
