"""Which events a batch of mailbox messages asks for (pure: no I/O, no program).

A step's end becomes ``step_completed``/``step_retrying``/``step_failed``, a timer
``wait_completed`` or ``step_started``, a payload ``hook_received``, a wake-up one
``wait_completed`` per sleep. A message that asks for nothing legal now (a duplicate, a late
end of a superseded attempt, a payload for a released hook) asks for nothing, and its caller
is answered at once. The run core speculates the events in order and writes them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from persistence import NewAnnotation, RunState
from persistence import events as ev
from persistence.errors import HookNotFoundError
from persistence.state import HookStatus, StepStatus, WaitStatus

from . import effects as fx
from .messages import HookPayload, Message, StepDue, StepFinished, WaitDue, WakeUp


@dataclass(frozen=True, slots=True)
class Trigger:
    """One event a message asks for."""

    data: ev.EventData
    corr: str
    annotations: tuple[NewAnnotation, ...] = ()


@dataclass
class Plan:
    """Per message, the events it asks for (in order); what to do at once; and the step
    bodies whose end is now in hand."""

    asks: list[tuple[Message, list[Trigger]]] = field(default_factory=list)
    effects: list[fx.Effect] = field(default_factory=list)
    ended_bodies: list[tuple[str, int]] = field(default_factory=list)


def plan(batch: Sequence[Message], state: RunState, now: datetime, may_start: bool) -> Plan:
    """The events ``batch`` asks for, given the run's ``state``. ``may_start``: new step
    attempts may start (not while the worker drains)."""
    out = Plan()
    claimed: set[tuple[str, str]] = set()
    for message in batch:
        triggers: list[Trigger] = []
        if isinstance(message, StepFinished):
            out.effects.append(fx.Acknowledge(message.step_id, message.attempt))
            out.ended_bodies.append((message.step_id, message.attempt))
            step = state.steps.get(message.step_id)
            key = ("finish", message.step_id)
            if (
                step is not None
                and step.status is StepStatus.RUNNING
                and step.attempt == message.attempt
                and key not in claimed
            ):
                claimed.add(key)
                triggers.append(Trigger(_ended(message), message.step_id, message.annotations))
        elif isinstance(message, WaitDue):
            triggers += _waits(state, claimed, {message.wait_id})
        elif isinstance(message, WakeUp):
            triggers += _waits(state, claimed, message.correlation_ids)
            if not triggers:
                out.effects.append(fx.Reply(message.reply, 0))
        elif isinstance(message, StepDue):
            step = state.steps.get(message.step_id)
            key = ("start", message.step_id)
            if (
                step is None
                or step.status is not StepStatus.PENDING
                or key in claimed
                or not may_start
            ):
                pass
            elif step.retry_after is not None and step.retry_after > now:
                out.effects.append(fx.Arm(f"step:{step.step_id}", step.retry_after, message))
            else:
                claimed.add(key)
                triggers.append(Trigger(ev.StepStarted(), message.step_id))
        elif isinstance(message, HookPayload):
            hook = state.hooks.get(message.hook_id)
            sent = message.idempotency_key
            if hook is None or hook.status is not HookStatus.ACTIVE:
                error = HookNotFoundError(message.token)
                out.effects.append(fx.Reply(message.reply, error=error))
            elif sent is not None and sent in hook.keys:
                out.effects.append(fx.Reply(message.reply, hook.run_id))  # recorded already
            else:
                data = ev.HookReceived(
                    payload=message.payload, token=message.token, idempotency_key=sent
                )
                triggers.append(Trigger(data, message.hook_id))
        out.asks.append((message, triggers))
    return out


def _waits(
    state: RunState, claimed: set[tuple[str, str]], wanted: frozenset[str] | set[str] | None
) -> list[Trigger]:
    found: list[Trigger] = []
    for wait in list(state.waits.values()):
        key = ("wait", wait.wait_id)
        if wanted is not None and wait.wait_id not in wanted:
            continue
        if wait.status is not WaitStatus.WAITING or key in claimed:
            continue
        claimed.add(key)
        found.append(Trigger(ev.WaitCompleted(resume_at=wait.resume_at), wait.wait_id))
    return found


def _ended(message: StepFinished) -> ev.EventData:
    if message.kind == "completed":
        return ev.StepCompleted(result=message.result or b"", closes=message.closes)
    assert message.error is not None
    if message.kind == "retry":
        return ev.StepRetrying(error=message.error, retry_after=message.retry_after)
    return ev.StepFailed(error=message.error, attempts=message.attempt, closes=message.closes)
