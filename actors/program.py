"""What the run actor drives: a run's deterministic program, its commands and outcome.

The actor knows nothing of workflow functions. ``runtime`` hands it a :class:`Program` per
run; the actor feeds it the run's events in log order (committed ones, and its own next
events just before it writes them), and collects what the program asks for: durable calls
(:class:`StartStep`, :class:`StartWait`, :class:`CreateHook`), hook disposals, annotations
and, once the workflow returns or raises, its :class:`Completed` or :class:`Failed` outcome.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import msgspec

from persistence import ErrorInfo, Event, NewAnnotation, Run, codec


class StartStep(msgspec.Struct, frozen=True):
    """Run step ``step_name`` with encoded ``input``; its id is ``step_id``."""

    position: int
    step_id: str
    step_name: str
    input: bytes


class StartWait(msgspec.Struct, frozen=True):
    """Sleep until ``resume_at``."""

    position: int
    wait_id: str
    resume_at: datetime


class CreateHook(msgspec.Struct, frozen=True):
    """Claim ``token`` for a hook through which payloads reach the run."""

    position: int
    hook_id: str
    token: str
    metadata: bytes | None = None


class StartChild(msgspec.Struct, frozen=True):
    """Start a child run of ``workflow_name`` with encoded ``input`` under ``child_run_id``."""

    position: int
    child_id: str
    child_run_id: str
    workflow_name: str
    input: bytes


class DisposeHook(msgspec.Struct, frozen=True):
    """Release a hook's token (the run goes on)."""

    hook_id: str


Command = StartStep | StartWait | CreateHook | StartChild | DisposeHook


class Completed(msgspec.Struct, frozen=True):
    """The workflow returned ``output`` (encoded)."""

    output: bytes


class Failed(msgspec.Struct, frozen=True):
    """The workflow failed with ``error`` (its ``code`` says how)."""

    error: ErrorInfo


Outcome = Completed | Failed


def outcome_payload(status: str, output: bytes | None, error: ErrorInfo | None) -> bytes:
    """How a child run's end is told to its parent (a payload on the parent's hook)."""
    return codec.encode(
        {
            "status": status,
            "output": output,
            "error": None
            if error is None
            else {
                "message": error.message,
                "type": error.type,
                "code": error.code,
                "traceback": error.traceback,
            },
        }
    )


class ProgramError(Exception):
    """A program cannot go on; the run fails with ``code`` (e.g. ``NON_DETERMINISM``)."""

    code = "RUNTIME_ERROR"


class UnknownWorkflow(ProgramError):
    """This process does not host the run's workflow; a worker that does will run it."""


def error_info(error: BaseException, code: str) -> ErrorInfo:
    """An exception as the log records it: message, type name, traceback text and code."""
    return ErrorInfo(
        message=str(error) or type(error).__name__,
        type=type(error).__name__,
        traceback=traceback_text(error),
        code=code,
    )


def traceback_text(error: BaseException) -> str:
    """``error``'s traceback as Python prints it, chained exceptions included, but without
    the ``^^^`` lines under each frame: placing them parses every frame's source line,
    which made formatting a failure about 2.5 times as slow (a retry's cost)."""
    formatted = traceback.TracebackException.from_exception(error)
    seen: set[int] = set()
    pending = [formatted]
    while pending:  # the chain (causes, contexts, groups), each exception once
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            frame.colno = None  # no position: no markers
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += getattr(current, "exceptions", None) or []
    return "".join(formatted.format())


class Program(Protocol):
    """A run's deterministic code, stepped by its actor."""

    def feed(self, event: Event) -> None:
        """Deliver the next event of the log and run the code until it can make no progress.

        Raises :class:`ProgramError` if the event contradicts the code (non-determinism).
        """

    def take_commands(self) -> list[Command]:
        """The durable calls made since the last take that the log does not hold yet."""

    def take_annotations(self) -> list[NewAnnotation]:
        """Annotations made by workflow code since the last take."""

    def take_outcome(self) -> Outcome | None:
        """The outcome, once, when the workflow has returned or raised."""

    def close(self) -> None:
        """Drop the code and everything it holds (passivation, end of run)."""


ProgramFactory = Callable[[Run], Program]
"""Makes the program of a run; raises :class:`ProgramError` if it cannot (unknown workflow)."""
