"""Turning what a run's program asks for into write requests (pure: no I/O, no clock).

A durable call becomes its ``*_created`` event (a step also its ``step_started``, unless the
worker is draining and starts no new bodies); workflow annotations become one
``AttachAnnotations``; the outcome becomes the run's terminal event and, for a child run,
its outcome on the parent's hook in the same batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from persistence import NewAnnotation, NewEvent, Run
from persistence import events as ev
from persistence.batch import Request
from persistence.records import AttachAnnotations
from persistence.state import Hook, HookStatus

from .program import (
    Command,
    Completed,
    CreateHook,
    DisposeHook,
    Outcome,
    StartStep,
    StartWait,
    outcome_payload,
)


def command_requests(
    run_id: str,
    commands: Iterable[Command],
    generation: int,
    hooks: Mapping[str, Hook],
    start_steps: bool,
) -> list[Request]:
    """The events that record ``commands`` (made in rerun generation ``generation``);
    ``hooks`` are the run's live hooks (a disposal of any other is already in the log)."""
    requests: list[Request] = []
    new_hooks: set[str] = set()  # hooks made by these very commands
    for command in commands:
        if isinstance(command, StartStep):
            created = ev.StepCreated(
                step_name=command.step_name,
                input=command.input,
                position=command.position,
                generation=generation,
            )
            requests.append(NewEvent(run_id, created, command.step_id))
            if start_steps:
                requests.append(NewEvent(run_id, ev.StepStarted(), command.step_id))
        elif isinstance(command, StartWait):
            wait = ev.WaitCreated(
                resume_at=command.resume_at, position=command.position, generation=generation
            )
            requests.append(NewEvent(run_id, wait, command.wait_id))
        elif isinstance(command, CreateHook):
            hook = ev.HookCreated(
                token=command.token,
                position=command.position,
                generation=generation,
                metadata=command.metadata,
            )
            requests.append(NewEvent(run_id, hook, command.hook_id))
            new_hooks.add(command.hook_id)
        elif isinstance(command, DisposeHook):
            held = hooks.get(command.hook_id)  # live hooks only: a released one is not here
            if command.hook_id in new_hooks or (held and held.status is HookStatus.ACTIVE):
                requests.append(NewEvent(run_id, ev.HookDisposed(), command.hook_id))
    return requests


def annotation_request(run_id: str, notes: list[NewAnnotation]) -> list[Request]:
    """Annotations made by workflow code, as one request (none if there are none)."""
    return [AttachAnnotations(run_id, tuple(notes))] if notes else []


def outcome_requests(run: Run, outcome: Outcome, at: datetime) -> list[Request]:
    """The terminal event for a program's outcome (and the parent's notice)."""
    data: ev.RunCompleted | ev.RunFailed
    if isinstance(outcome, Completed):
        data = ev.RunCompleted(output=outcome.output)
    else:
        data = ev.RunFailed(error=outcome.error)
    return list(ending_requests(run, data, at))


def ending_requests(
    run: Run, data: ev.RunCompleted | ev.RunFailed | ev.RunCancelled, at: datetime
) -> list[NewEvent]:
    """The run's terminal event and, for a child run, its outcome for the parent: the notice
    is written only if the ending is (``requires_previous``), in the same batch."""
    requests = [NewEvent(run.run_id, data, created_at=at)]
    if run.parent_run_id and run.parent_hook_id:
        if isinstance(data, ev.RunCompleted):
            payload = outcome_payload("completed", data.output, None)
        elif isinstance(data, ev.RunFailed):
            payload = outcome_payload("failed", None, data.error)
        else:
            payload = outcome_payload("cancelled", None, None)
        notice = ev.HookReceived(payload=payload)
        requests.append(
            NewEvent(run.parent_run_id, notice, run.parent_hook_id, requires_previous=True)
        )
    return requests
