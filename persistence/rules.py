"""The rules of a run's log: which event is legal in a state, and what it does to it.

``check(state, event)`` says whether an event is legal in ``state`` (raising the specific
error if not); ``apply(state, event)`` checks and folds it in. The run actor folds its run's
log with these, and every store validates each write with the same two functions, so the
rules exist once. Nothing here reads a clock or touches I/O: times come from the events.

The rules (after the reference engine's state machines, plus ``run_rerun``):

- run: (none) -created-> pending -started-> running -completed|failed|cancelled-> terminal;
  pending -cancelled-> cancelled; a second ``run_cancelled`` on a cancelled run is accepted
  and changes nothing; ``run_rerun`` takes a running or terminal run back to running with the
  next generation; ``run_started`` on a terminal run is ``RunExpiredError``.
- step: (none) -created-> pending -started-> running -completed|failed-> terminal;
  running -retrying-> pending; running -started-> running (a new attempt); a start before
  ``retry_after`` is ``TooEarlyError``. Once the run has ended, no step moves any more
  (``RunExpiredError``): a late completion of a cancelled run's step is refused.
- wait: (none) -created-> waiting -completed-> completed.
- hook: (none) -created-> active -received-> active; active -disposed-> disposed;
  (none) -conflict-> conflicted (written by the store instead of a second live claim).
- No new step, wait or hook on a terminal run. A run entering a terminal state releases its
  hooks (disposed) and cancels its waits.

``apply`` updates ``state`` in place and returns it, so folding costs O(1) per event however
long the run; the entities themselves are frozen. A refused event leaves ``state`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

import msgspec

from . import events as ev
from .errors import (
    EntityConflictError,
    HookNotFoundError,
    PayloadRecordedError,
    RunExpiredError,
    RunNotFoundError,
    RunNotSupportedError,
    StepNotFoundError,
    TooEarlyError,
    WaitNotFoundError,
)
from .events import SPEC_VERSION, Event
from .state import Hook, HookStatus, Run, RunState, RunStatus, Step, StepStatus, Wait, WaitStatus

_F = TypeVar("_F", bound=Callable[..., None])

# ---------------------------------------------------------------------------------------------
# check


def check(state: RunState, event: Event) -> None:
    """Raise the specific error if ``event`` is illegal in ``state``; return None if legal."""
    if event.spec_version > SPEC_VERSION:
        raise RunNotSupportedError(event.spec_version, SPEC_VERSION)
    run = state.run
    kind = event.event_type
    if kind == "run_created":
        if run is not None:
            raise EntityConflictError(f"run {event.run_id!r} already exists")
        return
    if run is None:
        raise RunNotFoundError(event.run_id)
    if run.spec_version > SPEC_VERSION:
        raise RunNotSupportedError(run.spec_version, SPEC_VERSION)
    check_kind = _CHECKS.get(kind)
    if check_kind is not None:
        check_kind(state, run, event)
    elif kind != "annotation_created":
        raise EntityConflictError(f"unknown event type {kind!r}")


def _check_run(_: RunState, run: Run, event: Event) -> None:
    kind, status = event.event_type, run.status
    if kind == "run_started":
        if status is RunStatus.RUNNING:
            raise EntityConflictError(f"run {run.run_id!r} is already running")
        if status.terminal:
            raise RunExpiredError(f"run {run.run_id!r} has already {status.value}")
    elif kind == "run_cancelled":
        if status in (RunStatus.COMPLETED, RunStatus.FAILED):
            raise EntityConflictError(f"run {run.run_id!r} has already {status.value}")
    elif kind in ("run_completed", "run_failed"):
        if status.terminal:
            raise EntityConflictError(f"run {run.run_id!r} has already {status.value}")
    elif kind == "run_rerun":
        data = event.data
        assert isinstance(data, ev.RunRerun)
        if status is RunStatus.PENDING:
            raise EntityConflictError(f"run {run.run_id!r} has not started; nothing to rerun")
        if data.generation != run.generation + 1:
            raise EntityConflictError(
                f"rerun generation {data.generation} of run {run.run_id!r} is not the next "
                f"one ({run.generation + 1}); another rerun came first"
            )


def _no_new_entities(run: Run, what: str) -> None:
    if run.status.terminal:
        raise EntityConflictError(
            f"cannot create {what} on run {run.run_id!r}: it has already {run.status.value}"
        )


def _check_step(state: RunState, run: Run, event: Event) -> None:
    kind, step_id = event.event_type, event.correlation_id or ""
    step = state.steps.get(step_id)
    if kind == "step_created":
        _no_new_entities(run, "a step")
        if step is not None:
            raise EntityConflictError(f"step {step_id!r} of run {run.run_id!r} already exists")
        return
    if run.status.terminal:
        raise RunExpiredError(f"run {run.run_id!r} has already {run.status.value}")
    if step is None:
        raise StepNotFoundError(run.run_id, step_id)
    if step.terminal:
        raise EntityConflictError(f"step {step_id!r} has already {step.status.value}")
    if kind == "step_started":
        if step.retry_after is not None and step.retry_after > event.created_at:
            raise TooEarlyError(
                f"step {step_id!r} may not start before {step.retry_after.isoformat()}",
                step.retry_after,
            )
    elif step.status is not StepStatus.RUNNING:
        raise EntityConflictError(f"step {step_id!r} is {step.status.value}, not running")


def _check_wait(state: RunState, run: Run, event: Event) -> None:
    wait_id = event.correlation_id or ""
    wait = state.waits.get(wait_id)
    if event.event_type == "wait_created":
        _no_new_entities(run, "a wait")
        if wait is not None:
            raise EntityConflictError(f"wait {wait_id!r} of run {run.run_id!r} already exists")
        return
    if run.status.terminal:
        raise RunExpiredError(f"run {run.run_id!r} has already {run.status.value}")
    if wait is None:
        raise WaitNotFoundError(run.run_id, wait_id)
    if wait.status is not WaitStatus.WAITING:
        raise EntityConflictError(f"wait {wait_id!r} has already {wait.status.value}")


def _check_hook(state: RunState, run: Run, event: Event) -> None:
    kind, hook_id = event.event_type, event.correlation_id or ""
    hook = state.hooks.get(hook_id)
    if kind in ("hook_created", "hook_conflict"):
        _no_new_entities(run, "a hook")
        if hook is not None:
            raise EntityConflictError(f"hook {hook_id!r} of run {run.run_id!r} already exists")
        return
    token = hook.token if hook is not None else hook_id
    if hook is None or hook.status is HookStatus.CONFLICTED:
        raise HookNotFoundError(token)
    if hook.status is HookStatus.DISPOSED:
        if kind == "hook_disposed":
            raise EntityConflictError(f"hook {hook_id!r} was already disposed")
        raise HookNotFoundError(token)
    data = event.data
    if isinstance(data, ev.HookReceived) and data.idempotency_key in hook.keys:
        raise PayloadRecordedError(hook.token, data.idempotency_key or "", run.run_id)


# ---------------------------------------------------------------------------------------------
# apply


def apply(state: RunState, event: Event, *, checked: bool = False) -> RunState:
    """Check ``event`` and fold it into ``state`` (in place); returns ``state``.

    Raises the error of :func:`check` and leaves ``state`` unchanged if the event is illegal.
    ``checked``: a store already checked it against this log (the write was guarded by the
    log's last event), so it is only folded.
    """
    if not checked:
        check(state, event)
    kind, at = event.event_type, event.created_at
    data = event.data
    if kind == "run_created":
        assert isinstance(data, ev.RunCreated)
        state.run = Run(
            run_id=event.run_id,
            workflow_name=data.workflow_name,
            status=RunStatus.PENDING,
            input=data.input,
            created_at=at,
            updated_at=at,
            last_event_id=event.event_id,
            spec_version=event.spec_version,
            execution_context=data.execution_context,
            metadata=data.metadata,
            parent_run_id=data.parent_run_id,
            parent_hook_id=data.parent_hook_id,
            seed=data.seed,
        )
        return state
    run = state.run
    assert run is not None
    run = msgspec.structs.replace(
        run, updated_at=at, last_event_id=event.event_id, event_count=run.event_count + 1
    )
    if kind.startswith("run_"):
        run = _apply_run(state, run, event)
    else:
        fold_kind = _FOLDS.get(kind)
        if fold_kind is not None:
            fold_kind(state, event)
    state.run = run
    return state


def _apply_run(state: RunState, run: Run, event: Event) -> Run:
    data, at, replace = event.data, event.created_at, msgspec.structs.replace
    if isinstance(data, ev.RunStarted):
        return replace(run, status=RunStatus.RUNNING, started_at=run.started_at or at)
    if isinstance(data, ev.RunRerun):
        release(state, at, from_position=data.from_position)
        return replace(
            run,
            status=RunStatus.RUNNING,
            generation=data.generation,
            output=None,
            error=None,
            completed_at=None,
        )
    if isinstance(data, ev.RunCompleted):
        run = replace(run, status=RunStatus.COMPLETED, output=data.output, completed_at=at)
    elif isinstance(data, ev.RunFailed):
        run = replace(run, status=RunStatus.FAILED, error=data.error, completed_at=at)
    elif isinstance(data, ev.RunCancelled):
        if run.status is RunStatus.CANCELLED:
            return run
        run = replace(run, status=RunStatus.CANCELLED, completed_at=at)
    release(state, at)
    return run


def release(state: RunState, at: datetime, from_position: int = 0) -> None:
    """Release what a run holds: live hooks are disposed and pending waits cancelled.

    A run that ends releases everything; a rerun releases what the calls from
    ``from_position`` on hold, since those calls are made again.
    """
    replace = msgspec.structs.replace
    for hook_id, hook in list(state.hooks.items()):
        if hook.status is HookStatus.ACTIVE and hook.position >= from_position:
            state.hooks[hook_id] = replace(hook, status=HookStatus.DISPOSED)
    for wait_id, wait in list(state.waits.items()):
        if wait.status is WaitStatus.WAITING and wait.position >= from_position:
            state.waits[wait_id] = replace(wait, status=WaitStatus.CANCELLED, completed_at=at)


def _apply_step(state: RunState, event: Event) -> None:
    data, at, replace = event.data, event.created_at, msgspec.structs.replace
    step_id = event.correlation_id or ""
    if isinstance(data, ev.StepCreated):
        state.steps[step_id] = Step(
            run_id=event.run_id,
            step_id=step_id,
            step_name=data.step_name,
            status=StepStatus.PENDING,
            input=data.input,
            position=data.position,
            generation=data.generation,
            created_at=at,
            updated_at=at,
        )
        return
    step = state.steps[step_id]
    if isinstance(data, ev.StepStarted):
        step = replace(
            step,
            status=StepStatus.RUNNING,
            attempt=step.attempt + 1,
            started_at=step.started_at or at,
            retry_after=None,
            updated_at=at,
        )
    elif isinstance(data, ev.StepCompleted):
        step = replace(
            step, status=StepStatus.COMPLETED, output=data.result, completed_at=at, updated_at=at
        )
    elif isinstance(data, ev.StepFailed):
        step = replace(
            step, status=StepStatus.FAILED, error=data.error, completed_at=at, updated_at=at
        )
    elif isinstance(data, ev.StepRetrying):
        step = replace(
            step,
            status=StepStatus.PENDING,
            error=data.error,
            retry_after=data.retry_after,
            updated_at=at,
        )
    state.steps[step_id] = step


def _apply_wait(state: RunState, event: Event) -> None:
    data, wait_id = event.data, event.correlation_id or ""
    if isinstance(data, ev.WaitCreated):
        state.waits[wait_id] = Wait(
            run_id=event.run_id,
            wait_id=wait_id,
            status=WaitStatus.WAITING,
            resume_at=data.resume_at,
            position=data.position,
            generation=data.generation,
            created_at=event.created_at,
        )
    else:
        wait = state.waits[wait_id]
        state.waits[wait_id] = msgspec.structs.replace(
            wait, status=WaitStatus.COMPLETED, completed_at=event.created_at
        )


def _apply_hook(state: RunState, event: Event) -> None:
    data, hook_id, replace = event.data, event.correlation_id or "", msgspec.structs.replace
    if isinstance(data, ev.HookCreated):
        state.hooks[hook_id] = Hook(
            run_id=event.run_id,
            hook_id=hook_id,
            token=data.token,
            status=HookStatus.ACTIVE,
            position=data.position,
            generation=data.generation,
            metadata=data.metadata,
            created_at=event.created_at,
        )
    elif isinstance(data, ev.HookConflict):
        state.hooks[hook_id] = Hook(
            run_id=event.run_id,
            hook_id=hook_id,
            token=data.token,
            status=HookStatus.CONFLICTED,
            position=data.position,
            generation=data.generation,
            conflicting_run_id=data.conflicting_run_id,
            created_at=event.created_at,
        )
    elif isinstance(data, ev.HookReceived):
        hook = state.hooks[hook_id]
        keys = hook.keys if data.idempotency_key is None else (*hook.keys, data.idempotency_key)
        state.hooks[hook_id] = replace(hook, received=hook.received + 1, keys=keys)
    elif isinstance(data, ev.HookDisposed):
        state.hooks[hook_id] = replace(state.hooks[hook_id], status=HookStatus.DISPOSED)


def _by_family(**families: _F) -> dict[str, _F]:
    """Each event type's function, by the family its name starts with (``step_`` ...)."""
    return {
        kind: function
        for kind in ev.EVENT_TYPES
        for family, function in families.items()
        if kind.startswith(family + "_")
    }


_CHECKS = _by_family(run=_check_run, step=_check_step, wait=_check_wait, hook=_check_hook)
"""How each event type is checked (one lookup, not a chain of prefix tests)."""
_FOLDS = _by_family(step=_apply_step, wait=_apply_wait, hook=_apply_hook)
"""How each event type other than a run's is folded."""


def fold(events: Iterable[Event], state: RunState | None = None) -> RunState:
    """Fold a run's events, in log order, into a state (a fresh one unless given)."""
    state = state if state is not None else RunState()
    for event in events:
        apply(state, event)
    return state
