"""A synchronous world around one run core: a model store, executor, timers and callers.

Everything the shell and the runtime do for a core is done here in memory, at once, with no
event loop: writes go through the same pure planner the stores use, so refusals are real.
Faults are injected on demand (a write or read that fails before or after it is stored, a
permanent failure, a crash of the actor mid-write), and the world checks invariants after
every input:

(a) a step body starts only for a stored, unfinished attempt, and each attempt at most once;
(b) a run that has not ended always has something that will move it (a body running, a timer
    armed, a live hook, an I/O retry pending);
(c) a fresh core loading the log reaches the live core's state and wants to write nothing;
and every caller is answered once the core is quiescent.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from actors import effects as fx
from actors.core import CoreConfig, Phase, RunCore
from actors.messages import (
    Begin,
    Cancel,
    Changed,
    HookPayload,
    Message,
    StepFinished,
    StepWork,
    WakeUp,
)
from persistence import ErrorInfo, Event, LeaseClaim, NewEvent, RunState, codec
from persistence import events as ev
from persistence.batch import Held, Request, TokenOwner, plan_batch
from persistence.errors import StoreError, StoreUnavailableError
from persistence.state import HookStatus, StepStatus, WaitStatus
from runtime.program import WorkflowProgram
from runtime.registry import WorkflowFunction, find_step

RUN = "wrun_model"
EPOCH = 1  # the lease epoch this world's worker holds the run at
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Crash(Exception):
    """The actor crashed in the middle of handling (a bug in the shell, say)."""


@dataclass
class Caller:
    """Stands in for a caller's future."""

    what: str
    done: bool = False
    value: object = None
    error: BaseException | None = None


@dataclass
class World:
    workflow: WorkflowFunction[Any, Any]
    passivate_after: float = 60.0
    clock: datetime = T0
    state: RunState = field(default_factory=RunState)
    log: list[Event] = field(default_factory=list)
    owners: dict[str, TokenOwner] = field(default_factory=dict)
    core: RunCore | None = None
    bodies: dict[str, StepWork] = field(default_factory=dict)
    unacked: dict[str, int] = field(default_factory=dict)
    timers: dict[str, tuple[datetime, object]] = field(default_factory=dict)
    hooks: dict[str, str] = field(default_factory=dict)
    callers: list[Caller] = field(default_factory=list)
    finished: list[StepFinished] = field(default_factory=list)
    faults: deque[str] = field(default_factory=deque)
    backoff: bool = False
    ended: bool = False
    closes: list[str] = field(default_factory=list)
    started: Counter[tuple[str, int]] = field(default_factory=Counter)
    handling: list[Message] = field(default_factory=list)
    reported: set[str] = field(default_factory=set)
    """Steps whose body reported a result to this process (none may run again here)."""
    claims: bool = False
    """Whether the run's first write takes its lease (a store with ``claims_in_write``);
    otherwise the worker holds it at ``EPOCH`` from the start."""
    lease: int | None = None
    """The epoch this world's worker holds the run's lease at (None: not held)."""

    def __post_init__(self) -> None:
        if not self.claims:
            self.lease = EPOCH

    # -- the core's world ---------------------------------------------------------------

    def new_core(self) -> RunCore:
        config = CoreConfig(
            worker_id="model", passivate_after=self.passivate_after, rng=random.Random(7)
        )
        return RunCore(RUN, lambda run: WorkflowProgram(run, self.workflow), config)

    def begin(self, *args: Any) -> Caller:
        data = self.workflow.signature.encode(args, {}, "model")
        created = NewEvent(
            RUN,
            ev.RunCreated(workflow_name=self.workflow.name, input=data, seed=b"model-seed"),
            created_at=self.clock,
            if_last_event_id="",
        )
        started = NewEvent(RUN, ev.RunStarted(), created_at=self.clock, if_last_event_id="")
        caller = Caller("begin")
        if self.claims:
            created = msgspec.structs.replace(created, claim=LeaseClaim("model", 10.0))
        fence = None if self.claims else EPOCH
        self.deliver(Begin((created, started), caller, fence=fence))  # type: ignore[arg-type]
        return caller

    def deliver(self, *messages: Message) -> None:
        """Messages into the run's mailbox; handled at once (a fresh actor if none is live)."""
        for message in messages:
            if isinstance(message, HookPayload | Cancel | WakeUp | Begin):
                self.callers.append(message.reply)  # type: ignore[arg-type]
        if self.core is None:
            self.core = self.new_core()
        self.handling = list(messages)
        core = self.core
        self.guarded(lambda: core.receive(messages, self.clock))

    def guarded(self, handle: Any) -> None:
        """Handle, then act; a crash restarts the actor with the messages in hand."""
        try:
            handle()
            self.drive()
        except Crash:
            self.backoff = False
            self.core = self.new_core()
            self.deliver(*[m for m in self.handling if not _answered(m)], Changed())

    def drive(self) -> None:
        core = self.core
        assert core is not None
        while effects := core.take():
            for effect in effects:
                result = self.execute(effect)
                if result is not None:
                    core.receive((result,), self.clock)
        if core.stopped and not self.backoff:
            self.core = None  # the actor stopped; the next message makes a new one

    def retry(self) -> None:
        """The backoff is over."""
        core = self.core
        assert core is not None and self.backoff
        self.backoff = False
        self.guarded(lambda: core.receive((fx.Retry(),), self.clock))

    def execute(self, effect: fx.Effect) -> fx.Result | None:
        if isinstance(effect, fx.Write):
            return self.write(effect.requests)
        if isinstance(effect, fx.Read):
            return self.read(effect.after, effect.claim)
        if isinstance(effect, fx.Backoff):
            self.backoff = True
        elif isinstance(effect, fx.StartBody):
            self.start_body(effect.work)
        elif isinstance(effect, fx.Acknowledge):
            if self.unacked.get(effect.step_id) == effect.attempt:
                del self.unacked[effect.step_id]
        elif isinstance(effect, fx.Arm):
            self.timers.setdefault(effect.key, (effect.at, effect.message))
        elif isinstance(effect, fx.Disarm):
            self.timers.pop(effect.key, None)
        elif isinstance(effect, fx.Claimed):
            assert effect.epoch == self.lease, f"claimed {effect.epoch}, store has {self.lease}"
        elif isinstance(effect, fx.Reply):
            caller = effect.reply
            assert isinstance(caller, Caller) and not caller.done, f"answered twice: {caller}"
            caller.done, caller.value, caller.error = True, effect.value, effect.error
        elif isinstance(effect, fx.HookLive):
            self.hooks[effect.token] = effect.hook_id
        elif isinstance(effect, fx.HookGone):
            self.hooks.pop(effect.token, None)
        elif isinstance(effect, fx.CloseStreams):
            self.closes.extend(effect.namespaces)
        elif isinstance(effect, fx.Ended):
            self.ended = True
            self.timers.clear()
            self.bodies.clear()
            self.hooks.clear()
        elif isinstance(effect, fx.Released):
            raise AssertionError("nothing in this world takes the run away")
        return None

    def write(self, requests: list[Request]) -> fx.Result:
        fault = self.faults.popleft() if self.faults else None
        if fault == "fail":
            return fx.IOFailed(StoreUnavailableError("down (model)"))
        if fault == "permanent":
            return fx.IOFailed(StoreError("misconfigured (model)"), transient=False)
        if fault == "crash-before":
            raise Crash()
        states = {RUN: self.state.copy()}
        claimed = {
            r.data.token
            for r in requests
            if isinstance(r, NewEvent) and isinstance(r.data, ev.HookCreated)
        }
        tokens = {t: self.owners.get(t) for t in claimed}
        epochs = {RUN: self.lease} if self.lease is not None else {}
        held = {RUN: Held("model", T0 + timedelta(days=1), self.lease)} if self.lease else {}
        plan = plan_batch(states, requests, self.clock, tokens, epochs=epochs, held=held)  # type: ignore[arg-type]
        self.state = states[RUN]
        if RUN in plan.claims:
            self.lease = plan.claims[RUN].epoch
        self.log.extend(plan.events)
        for hook in plan.hooks.values():
            if hook.status is HookStatus.ACTIVE:
                self.owners[hook.token] = TokenOwner(hook.run_id, hook.hook_id, hook.position)
            elif self.owners.get(hook.token, TokenOwner("", "", 0)).hook_id == hook.hook_id:
                del self.owners[hook.token]
        if fault == "lost":
            return fx.IOFailed(StoreUnavailableError("connection lost after commit (model)"))
        if fault == "crash":
            raise Crash()
        return fx.Written(plan.outcomes, plan.emitted, plan.result().leases)

    def read(self, after: str | None, claim: bool = False) -> fx.Result:
        if self.faults and self.faults[0] == "read":
            self.faults.popleft()
            return fx.IOFailed(StoreUnavailableError("down (model)"))
        if claim and self.lease is None:  # nobody else holds it in this world
            self.lease = EPOCH
        events = self.log if after is None else [e for e in self.log if e.event_id > after]
        return fx.Loaded(list(events), self.in_flight(), self.lease)

    def in_flight(self) -> dict[str, int]:
        return {**{w.step_id: w.attempt for w in self.bodies.values()}, **self.unacked}

    def start_body(self, work: StepWork) -> None:
        step = self.state.steps.get(work.step_id)
        assert step is not None and step.status is StepStatus.RUNNING, (
            f"body of {work.step_id} started, but it is {step and step.status} in the log"
        )
        assert step.attempt == work.attempt, (
            f"body of attempt {work.attempt}, log has {step.attempt}"
        )
        assert work.step_id not in self.reported, (
            f"step {work.step_id} reported its result to this process, yet runs again"
        )
        key = (work.step_id, work.attempt)
        self.started[key] += 1
        assert self.started[key] == 1, f"attempt {key} started twice"
        self.bodies[work.step_id] = work

    # -- what happens to the run --------------------------------------------------------

    def finish(self, index: int, kind: str) -> None:
        """A running body ends (``completed``, ``retry`` or ``failed``)."""
        if not self.bodies:
            return
        work = sorted(self.bodies.values(), key=lambda w: w.step_id)[index % len(self.bodies)]
        del self.bodies[work.step_id]
        self.unacked[work.step_id] = work.attempt
        error = ErrorInfo(message="boom", type="ValueError")
        if kind == "completed":
            finished = StepFinished(work.step_id, work.attempt, "completed", _run_step(work))
            self.reported.add(work.step_id)
        elif kind == "retry":
            at = self.clock + timedelta(seconds=1)
            finished = StepFinished(
                work.step_id, work.attempt, "retry", error=error, retry_after=at
            )
        else:
            finished = StepFinished(work.step_id, work.attempt, "failed", error=error)
        self.finished.append(finished)
        self.deliver(finished)

    def fire(self, index: int) -> None:
        """The earliest-but-``index`` armed timer fires (the clock moves to it)."""
        if not self.timers:
            return
        key = sorted(self.timers, key=lambda k: (self.timers[k][0], k))[index % len(self.timers)]
        at, message = self.timers.pop(key)
        self.clock = max(self.clock, at) + timedelta(microseconds=1)
        self.deliver(message)  # type: ignore[arg-type]

    def fire_kind(self, prefix: str) -> None:
        """The earliest timer whose key starts with ``prefix`` fires."""
        keys = sorted(
            (k for k in self.timers if k.startswith(prefix)), key=lambda k: self.timers[k][0]
        )
        if keys:
            at, message = self.timers.pop(keys[0])
            self.clock = max(self.clock, at) + timedelta(microseconds=1)
            self.deliver(message)  # type: ignore[arg-type]

    def payload(self, value: object) -> None:
        if not self.hooks:
            return
        token, hook_id = sorted(self.hooks.items())[0]
        self.deliver(HookPayload(hook_id, token, codec.encode(value), Caller("payload")))  # type: ignore[arg-type]

    def foreign(self, what: str) -> None:
        """Another writer (a client in another process) appends to the log."""
        run = self.state.run
        if run is None or run.status.terminal:
            return
        request: NewEvent | None = None
        if what == "cancel":
            request = NewEvent(RUN, ev.RunCancelled(reason="elsewhere"), created_at=self.clock)
        elif what == "payload":
            live = [h for h in self.state.hooks.values() if h.status is HookStatus.ACTIVE]
            if live:
                data = ev.HookReceived(payload=codec.encode("foreign"), token=live[0].token)
                request = NewEvent(RUN, data, live[0].hook_id, created_at=self.clock)
        elif what == "wake":
            waiting = [w for w in self.state.waits.values() if w.status is WaitStatus.WAITING]
            if waiting:
                data2 = ev.WaitCompleted(resume_at=waiting[0].resume_at)
                request = NewEvent(RUN, data2, waiting[0].wait_id, created_at=self.clock)
        if request is None:
            return
        faults, self.faults = self.faults, deque()
        self.write([request])
        self.faults = faults
        self.deliver(Changed())

    def crash(self) -> None:
        """The actor crashes between messages: the system starts a fresh one, which loads."""
        if self.core is not None and not self.backoff:
            self.core = self.new_core()
            self.deliver(Changed())

    def restart(self) -> None:
        """The process dies and starts again: bodies, timers, routes and messages are gone;
        the run is recovered from its log."""
        if self.ended:
            return
        self.core = None
        self.backoff = False
        self.bodies.clear()
        self.unacked.clear()
        self.timers.clear()
        self.hooks.clear()
        self.reported.clear()
        self.finished.clear()
        self.callers = [c for c in self.callers if c.done]  # they got errors from the old one
        self.deliver(Changed())

    def duplicate(self, index: int) -> None:
        if self.finished:
            self.deliver(self.finished[index % len(self.finished)])

    # -- invariants ---------------------------------------------------------------------

    def check(self) -> None:
        """(b) and (c), and every caller answered, once nothing is in flight."""
        if self.backoff:
            return  # an I/O retry is pending: that moves the run
        for caller in self.callers:
            assert caller.done, f"a caller was left waiting: {caller}"
        run = self.state.run
        if run is None:
            return
        if run.status.terminal:
            assert self.ended or self.core is None, "the run ended but its core did not end"
            return
        self._check_moving()
        core = self.core
        if core is not None and core.phase is Phase.READY and core.io is None:
            self._check_replay(core)

    def _check_moving(self) -> None:
        moving = []
        for step in self.state.steps.values():
            if step.terminal:
                continue
            if step.status is StepStatus.RUNNING:
                work = self.bodies.get(step.step_id)
                assert work is not None and work.attempt == step.attempt, (
                    f"step {step.step_id} is running in the log but no body runs it"
                )
            else:
                assert f"step:{step.step_id}" in self.timers, (
                    f"pending step {step.step_id} has no timer"
                )
            moving.append(step.step_id)
        for wait in self.state.waits.values():
            if wait.status is WaitStatus.WAITING:
                assert f"wait:{wait.wait_id}" in self.timers, f"wait {wait.wait_id} has no timer"
                moving.append(wait.wait_id)
        for hook in self.state.hooks.values():
            if hook.status is HookStatus.ACTIVE:
                assert self.hooks.get(hook.token) == hook.hook_id, f"hook {hook.token} not routed"
                moving.append(hook.hook_id)
        assert moving, "the run has not ended and nothing will move it"

    def _check_replay(self, core: RunCore) -> None:
        fresh = self.new_core()
        fresh.receive((), self.clock)
        (read,) = fresh.take()
        assert isinstance(read, fx.Read) and read.after is None
        fresh.receive((fx.Loaded(list(self.log), self.in_flight(), EPOCH),), self.clock)
        wanted = [e for e in fresh.take() if isinstance(e, fx.Write)]
        assert not wanted, f"a replay of the log wants to write {wanted[0].requests}"
        assert fresh.view.state == core.view.state, "the replayed state differs from the live one"
        fresh.abandon()


def _answered(message: Message) -> bool:
    reply = getattr(message, "reply", None)
    return isinstance(reply, Caller) and reply.done


def _run_step(work: StepWork) -> bytes:
    """Run a model step body (a coroutine with no awaits) and encode its result."""
    step = find_step(work.step_name)
    args, kwargs = step.signature.decode(work.input, step.name)
    coroutine = step.fn(*args, **kwargs)
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return codec.encode(stop.value)
    raise AssertionError("a model step must not await")
