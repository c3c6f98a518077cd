"""Where the workflow and step APIs find their run: the running loop, or the step's context.

Workflow code runs on its run's :class:`WorkflowLoop`, whose owner is the run's program.
A step body runs on the runtime's own loop with a :class:`StepContext` in a context variable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from persistence import NewAnnotation

from .loop import WorkflowLoop

if TYPE_CHECKING:
    from .program import WorkflowProgram


@dataclass(frozen=True, slots=True)
class StepMetadata:
    """What a step body knows of itself: ``attempt`` counts from 1."""

    step_name: str
    step_id: str
    attempt: int
    started_at: datetime


@dataclass(frozen=True, slots=True)
class WorkflowMetadata:
    """What workflow code (or a step) knows of its run."""

    workflow_name: str
    run_id: str
    started_at: datetime


@dataclass(slots=True)
class StepContext:
    """The context of one step attempt; annotations are buffered until the step finishes."""

    step: StepMetadata
    workflow: WorkflowMetadata
    runtime: Any
    generation: int
    annotations: list[NewAnnotation] = field(default_factory=list)
    on_annotation: Callable[[NewAnnotation, Any], None] | None = None
    streams: dict[str, Any] = field(default_factory=dict)
    closes: list[str] = field(default_factory=list)
    """Streams the attempt closed: they close once its completion (or failure) is stored."""
    equal_notes: dict[str, int] = field(default_factory=dict)
    """How many equal annotations the attempt made so far, by digest (their keys' ordinal)."""


step_context: ContextVar[StepContext | None] = ContextVar("actorflow_step", default=None)
plain_step: ContextVar[StepMetadata | None] = ContextVar("actorflow_plain_step", default=None)
"""The metadata of a step called as a plain function (outside a workflow and any step)."""
runtime_context: ContextVar[Any] = ContextVar("actorflow_runtime", default=None)


def current_program() -> WorkflowProgram | None:
    """The program of the workflow whose code is running, or None outside workflow code."""
    loop = asyncio.events._get_running_loop()
    if isinstance(loop, WorkflowLoop):
        owner: WorkflowProgram = loop.owner  # type: ignore[assignment]
        return owner
    return None


def current_step() -> StepContext | None:
    """The step attempt whose body is running, or None."""
    if isinstance(asyncio.events._get_running_loop(), WorkflowLoop):
        return None
    return step_context.get()
