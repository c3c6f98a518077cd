"""Callers waiting on a run core: which write answers them, and with what.

A message from a caller (a hook payload, a cancel, a wake-up, a new run) is answered only
once the event it asked for is a fact. A write in flight remembers, per caller, the range of
its requests that answer it. If the write is refused, a caller whose events were stored
anyway (an earlier try of the same write committed and its reply was lost) is answered from
the log; everyone else's message is handled again. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from persistence import Event, NewEvent
from persistence.batch import Request
from persistence.errors import HookNotFoundError, RunNotFoundError

from . import effects as fx
from .messages import Begin, Cancel, HookPayload, Message, RunElsewhere, StepFinished, WakeUp

ASKING = (HookPayload, Cancel, WakeUp, Begin)
"""Messages from a caller who waits for an answer."""


@dataclass(slots=True)
class Asked:
    """A caller's message and the range of a write's requests that answer it."""

    message: HookPayload | Cancel | WakeUp | Begin
    first: int
    end: int


@dataclass(slots=True)
class Pending:
    """A write in flight: its requests, the messages it handles, who waits for it."""

    requests: list[Request]
    messages: list[Message] = field(default_factory=list)
    asked: list[Asked] = field(default_factory=list)
    begin: Begin | None = None

    def forget(self, message: Message) -> None:
        """``message`` was answered: it is neither waited for nor handled again."""
        self.asked = [a for a in self.asked if a.message is not message]
        self.messages = [m for m in self.messages if m is not message]
        if self.begin is message:
            self.begin = None


def success(message: Message, run_id: str, count: int) -> object:
    """What a caller gets once its events are written (``count`` of them)."""
    if isinstance(message, HookPayload):
        return run_id
    if isinstance(message, WakeUp):
        return count
    return True


def answer_written(pending: Pending, accepted: set[int], run_id: str) -> list[fx.Effect]:
    """Answer the callers whose events the write stored; they are forgotten."""
    replies: list[fx.Effect] = []
    for asked in list(pending.asked):
        count = sum(1 for i in range(asked.first, asked.end) if i in accepted)
        if count:
            replies.append(fx.Reply(asked.message.reply, success(asked.message, run_id, count)))
            pending.forget(asked.message)
    return replies


def answer_from_log(
    pending: Pending, events: Sequence[Event], run_id: str
) -> tuple[list[fx.Effect], list[Message]]:
    """After a refused write and a fresh read: answer the callers whose events are in the
    log (same type, call and time as requested), and the messages to handle again."""
    logged = Counter((e.event_type, e.correlation_id, e.created_at) for e in events)
    replies: list[fx.Effect] = []
    for asked in list(pending.asked):
        keys = [
            (r.event_type, r.correlation_id, r.created_at)
            for r in pending.requests[asked.first : asked.end]
            if isinstance(r, NewEvent) and r.run_id == run_id and r.created_at is not None
        ]
        if keys and all(logged[k] > 0 for k in keys):
            logged.subtract(keys)
            replies.append(fx.Reply(asked.message.reply, success(asked.message, run_id, len(keys))))
            pending.forget(asked.message)
    return replies, pending.messages


def answer_gone(batch: Sequence[Message], gone: str, run_id: str) -> list[fx.Effect]:
    """Answers for callers once the run has ``ended``, is ``missing`` (never created), or
    is not run here (``released``, ``drained``)."""
    effects: list[fx.Effect] = []
    for message in batch:
        if isinstance(message, StepFinished):
            effects.append(fx.Acknowledge(message.step_id, message.attempt))
        if not isinstance(message, ASKING):
            continue
        if isinstance(message, HookPayload) and gone in ("ended", "missing"):
            effects.append(fx.Reply(message.reply, error=HookNotFoundError(message.token)))
        elif gone == "ended":
            effects.append(fx.Reply(message.reply, 0 if isinstance(message, WakeUp) else False))
        elif gone == "missing":
            effects.append(fx.Reply(message.reply, error=RunNotFoundError(run_id)))
        else:
            effects.append(fx.Reply(message.reply, error=RunElsewhere(run_id)))
    return effects
