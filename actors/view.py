"""A run core's view of its run: the fold of its log, kept to what can still move.

Committed events are folded with the same pure ``apply`` the stores validate with. What
can no longer move (a completed step, a finished wait, a released hook, a call superseded by
a rerun) is dropped at once, so a live run holds its open calls only, not every input and
output it ever had. Committing also decides what the facts call for (a body to start, a
timer to arm, a hook to register); those decisions are returned as effects. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from persistence import Event, Run, RunState, apply, fold
from persistence import events as ev
from persistence.history import effective_history
from persistence.state import HookStatus, StepStatus, WaitStatus

from . import effects as fx
from .messages import StepDue, StepWork, WaitDue


@dataclass
class AfterCommit:
    """What committed events call for."""

    effects: list[fx.Effect] = field(default_factory=list)
    conflicts: list[Event] = field(default_factory=list)
    """``hook_conflict`` events the program must be fed (the store wrote them, not we)."""
    ended: bool = False


class RunView:
    """The state of one run as its core needs it; see the module docstring."""

    __slots__ = ("bodies", "last", "live_hooks", "state")

    def __init__(self) -> None:
        self.state = RunState()
        self.last: str | None = None
        self.bodies: dict[str, int] = {}
        """Step id -> the attempt whose body runs in this process."""
        self.live_hooks: dict[str, str] = {}
        """Hook id -> token, as registered with the host."""

    @property
    def run(self) -> Run | None:
        return self.state.run

    def load(self, events: Sequence[Event]) -> list[Event]:
        """Fold the whole log; the history a replay of the current generation is fed."""
        self.state = fold(events)
        self.last = self.state.run.last_event_id if self.state.run is not None else None
        self.bodies = {}
        history, current = effective_history(events)
        state = self.state
        for table in (state.steps, state.waits, state.hooks):
            for key in [k for k in table if k not in current]:
                del table[key]
        for key in [*state.steps, *state.waits, *state.hooks]:
            self._forget_if_done(key)
        return history

    def forget(self) -> None:
        """Hold nothing (the run is unloaded)."""
        self.state, self.last, self.bodies, self.live_hooks = RunState(), None, {}, {}

    def commit(self, events: Sequence[Event], foreign: bool) -> AfterCommit:
        """Fold facts in; what they call for. ``foreign`` events were written by another
        writer (no body is started for them). Raises if an event does not apply."""
        after = AfterCommit()
        state = self.state
        for event in events:
            apply(state, event, checked=not foreign)  # own writes were checked on this log
            self.last = event.event_id
            data, corr = event.data, event.correlation_id or ""
            kind = type(data)  # the data classes are final: one lookup, not a chain of checks
            if kind is ev.StepStarted:
                if not foreign:
                    after.effects.append(fx.StartBody(self._work(corr, event.created_at)))
            elif kind is ev.StepRetrying:
                assert isinstance(data, ev.StepRetrying)
                when = data.retry_after or event.created_at
                after.effects.append(fx.Arm(f"step:{corr}", when, StepDue(corr)))
            elif kind is ev.WaitCreated:
                assert isinstance(data, ev.WaitCreated)
                after.effects.append(fx.Arm(wait_timer(corr), data.resume_at, WaitDue(corr)))
            elif kind is ev.WaitCompleted:
                after.effects.append(fx.Disarm(wait_timer(corr)))
            elif kind is ev.HookCreated:
                assert isinstance(data, ev.HookCreated)
                after.effects += self.hook_live(corr, data.token)
            elif kind is ev.HookDisposed:
                after.effects += self.hook_gone(corr)
            elif kind is ev.HookConflict:
                if not foreign:
                    after.conflicts.append(event)
            elif kind is ev.StepCompleted or kind is ev.StepFailed:
                assert isinstance(data, ev.StepCompleted | ev.StepFailed)
                if data.closes:
                    after.effects.append(fx.CloseStreams(data.closes))
            elif event.event_type in ev.TERMINAL_RUN_EVENTS:
                after.ended = True
            if corr:
                self._forget_if_done(corr)
        return after

    def due(
        self, running: Mapping[str, int], finishing: set[tuple[str, int]], draining: bool
    ) -> tuple[list[str], list[fx.Effect]]:
        """After a load: the steps whose attempt was lost (to start again) and the timers
        and hooks to arm. ``running`` are the attempts whose bodies run here;
        ``finishing`` those whose end is waiting to be handled."""
        restart: list[str] = []
        effects: list[fx.Effect] = []
        for step in sorted(self.state.steps.values(), key=lambda s: s.position):
            if step.status is StepStatus.PENDING:
                when = step.retry_after or step.updated_at
                effects.append(fx.Arm(f"step:{step.step_id}", when, StepDue(step.step_id)))
            elif running.get(step.step_id) == step.attempt:
                self.bodies[step.step_id] = step.attempt
            elif (step.step_id, step.attempt) not in finishing and not draining:
                restart.append(step.step_id)
        for wait in self.state.waits.values():
            effects.append(fx.Arm(wait_timer(wait.wait_id), wait.resume_at, WaitDue(wait.wait_id)))
        for hook in self.state.hooks.values():
            effects += self.hook_live(hook.hook_id, hook.token)
        return restart, effects

    def hook_live(self, hook_id: str, token: str) -> list[fx.Effect]:
        if self.live_hooks.get(hook_id) == token:
            return []
        self.live_hooks[hook_id] = token
        return [fx.HookLive(token, hook_id)]

    def hook_gone(self, hook_id: str) -> list[fx.Effect]:
        token = self.live_hooks.pop(hook_id, None)
        return [] if token is None else [fx.HookGone(token, hook_id)]

    def waiting_only(self, now: datetime, horizon: float) -> bool:
        """No step open or running here, and no sleep due within ``horizon`` seconds."""
        if self.bodies or self.state.steps:
            return False
        soonest = min((w.resume_at for w in self.state.waits.values()), default=None)
        return soonest is None or (soonest - now).total_seconds() > horizon

    def asleep(self) -> bool:
        """Only sleeps can move the run (no hook open): nothing but a timer is expected, so
        once waiting only, the run stays idle until a sleep is due."""
        return bool(self.state.waits) and not self.state.hooks

    def _work(self, step_id: str, at: datetime) -> StepWork:
        run, step = self.state.run, self.state.steps[step_id]
        assert run is not None
        self.bodies[step_id] = step.attempt
        return StepWork(
            run_id=run.run_id,
            step_id=step_id,
            step_name=step.step_name,
            input=step.input,
            attempt=step.attempt,
            started_at=at,
            generation=run.generation,
            workflow_name=run.workflow_name,
            run_started_at=run.started_at or run.created_at,
        )

    def _forget_if_done(self, key: str) -> None:
        """Drop an entity that cannot move any more (the program has its payloads)."""
        state = self.state
        step = state.steps.get(key)
        if step is not None and step.terminal:
            del state.steps[key]
        wait = state.waits.get(key)
        if wait is not None and wait.status is not WaitStatus.WAITING:
            del state.waits[key]
        hook = state.hooks.get(key)
        if hook is not None and hook.status is not HookStatus.ACTIVE:
            del state.hooks[key]


def wait_timer(wait_id: str) -> str:
    """The key of the timer that ends the durable sleep ``wait_id``."""
    return f"wait:{wait_id}"


def stream_closes(history: Sequence[Event]) -> tuple[str, ...]:
    """Streams closed by steps whose end is in the log (closed again after a load, in case
    a process died between storing the end and closing them)."""
    names: dict[str, None] = {}
    for event in history:
        if isinstance(event.data, ev.StepCompleted | ev.StepFailed):
            names.update(dict.fromkeys(event.data.closes))
    return tuple(names)
