"""The run actor: one per live run; its state is the fold of the run's events.

It turns messages (a step finished, a timer fired, a hook payload, a cancel...) into events,
feeds them to the run's program *before* writing them (so the workflow has already made its
next durable calls), and writes the events and those calls in one conditional batch: the
completion of step N and the start of step N+1 share a commit. Only after the commit does
it act on them (start step bodies, arm timers), so nothing outside learns of an event before
it is a fact. If the batch is refused (another writer moved the run), the speculation is
dropped and the run is replayed from its log, then the same messages are handled again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from persistence import ErrorInfo, Event, NewEvent, Run, RunState, Store, apply, fold
from persistence import events as ev
from persistence.errors import HookNotFoundError, StoreUnavailableError
from persistence.history import effective_history
from persistence.records import AttachAnnotations
from persistence.state import HookStatus, RunStatus, StepStatus, WaitStatus

from .actor import STOP, Actor, _Stop
from .batcher import Batcher
from .messages import (
    Begin,
    Cancel,
    Changed,
    HookPayload,
    Idle,
    Message,
    StepDue,
    StepFinished,
    StepWork,
    WaitDue,
    WakeUp,
)
from .observer import RunObserver
from .program import (
    Completed,
    CreateHook,
    DisposeHook,
    Program,
    ProgramError,
    ProgramFactory,
    StartStep,
    StartWait,
    outcome_payload,
)
from .timers import Timers

log = logging.getLogger("actorflow.actors")


class StepExecutor(Protocol):
    """Runs step bodies; reports each attempt's end to the run as a ``StepFinished``."""

    def start(self, work: StepWork) -> None: ...

    def cancel(self, run_id: str) -> None: ...

    def in_flight(self, run_id: str) -> dict[str, int]:
        """step id → attempt, for the attempts of this run running or whose end was reported
        but not yet acknowledged."""
        ...

    def acknowledge(self, run_id: str, step_id: str, attempt: int) -> None:
        """The run has the end of this attempt in hand."""
        ...


@dataclass
class RunServices:
    """What every run actor of a runtime shares."""

    store: Store
    batcher: Batcher
    timers: Timers
    executor: StepExecutor
    programs: ProgramFactory
    deliver: Callable[[str, object], None]
    passivate_after: float = 60.0
    worker_id: str | None = None
    observe: Callable[[str, str], None] | None = None
    on_end: Callable[[Run], None] | None = None
    observer: RunObserver | None = None
    hooks: dict[str, tuple[str, str]] | None = None
    """Live hook tokens of the runs of this runtime: token → (run id, hook id)."""
    loads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))
    """How many runs may read their logs at once (recovering thousands of runs)."""


class _Stale(Exception):
    """A batch was refused: the speculation is void and the run must be replayed."""

    def __init__(self, error: BaseException, outcomes: list[object]) -> None:
        super().__init__(str(error))
        self.error = error
        self.outcomes = outcomes


def _now() -> datetime:
    return datetime.now(UTC)


class RunActor(Actor[Message]):
    """The actor of one run; see the module docstring."""

    def __init__(self, run_id: str, services: RunServices, begin: Begin | None = None) -> None:
        self.run_id = run_id
        self.s = services
        self.begin = begin
        self.state = RunState()
        self.last: str | None = None
        self.program: Program | None = None
        self.current: set[str] = set()
        self.open_steps: set[str] = set()
        self.open_waits: dict[str, datetime] = {}
        self.done = False
        self.announced: Run | None = None  # the run as begin() writes it, until committed
        self.in_segment = False
        self.idle_marker = 0  # moved each time the run goes idle; an Idle message names one
        self.idle_marker = 0
        self.finishing: set[tuple[str, int]] = set()  # step attempts whose end is in hand

    # -- lifecycle ------------------------------------------------------------------------

    async def started(self) -> _Stop | None:
        if self.begin is not None:
            begin, self.begin = self.begin, None
            await self._begin(begin)
        if self.program is None and not self.done:
            await self._load()
        return self._settle(idle_since=None)

    async def handle(self, messages: Sequence[Message]) -> _Stop | None:
        if all(isinstance(m, Idle) for m in messages):
            return self._settle(idle_since=max(m.marker for m in messages))  # type: ignore[union-attr]
        self.finishing = {(m.step_id, m.attempt) for m in messages if isinstance(m, StepFinished)}
        for _ in range(8):
            if self.done:
                self._answer_ended(messages)
                return STOP
            if self.program is None:
                await self._load()
                continue
            try:
                await self._process(messages)
                break
            except _Stale as stale:
                log.info("run %s changed under its actor (%s); replaying", self.run_id, stale.error)
                self._drop_program()
        else:
            raise RuntimeError(f"run {self.run_id} kept changing under its actor")
        return self._settle(idle_since=None)

    def _settle(self, idle_since: int | None) -> _Stop | None:
        """After handling: stop if the run ended; passivate once it has only waited for
        ``passivate_after`` seconds (now, if that is 0); else note when it went idle."""
        if self.done:
            self._drop_program()
            return STOP
        if not self._waiting_only():
            return None
        if self.s.passivate_after <= 0 or idle_since == self.idle_marker:
            self._drop_program()
            self._end_segment("passivated")
            return STOP
        if idle_since is None:
            self.idle_marker += 1
            self.s.timers.disarm(self.run_id, "idle")
            at = _now() + timedelta(seconds=self.s.passivate_after)
            self.s.timers.arm(self.run_id, "idle", at, Idle(self.idle_marker))
        return None

    async def stopped(self) -> None:
        self._drop_program()
        self._end_segment("stopped")

    async def give_up(self, error: BaseException, messages: Sequence[Message]) -> None:
        info = ErrorInfo(
            message=f"the run's actor kept failing: {error}",
            type=type(error).__name__,
            code="RUNTIME_ERROR",
        )
        try:
            await self.s.batcher.submit(self._ending(ev.RunFailed(error=info)))
        except Exception:
            log.exception("could not record the failure of run %s", self.run_id)
        self._finish()
        for message in messages:
            reply = getattr(message, "reply", None)
            if isinstance(reply, asyncio.Future) and not reply.done():
                reply.set_exception(RuntimeError(f"run {self.run_id} failed: {error}"))

    # -- loading and replay ---------------------------------------------------------------

    async def _begin(self, begin: Begin) -> None:
        provisional = RunState()
        events = [
            Event("", r.run_id, r.event_type, None, r.data, r.created_at or _now(), r.spec_version)
            for r in begin.events
        ]
        try:
            fold(events, provisional)
            assert provisional.run is not None
            self.announced = provisional.run
            self.program = self.s.programs(provisional.run)
            self._segment(provisional.run, resumed=False)
            for event in events:
                self.program.feed(event)
            await self._round(list(begin.events), patient=False)
        except _Stale as stale:
            first = stale.outcomes[0] if stale.outcomes else stale.error
            if isinstance(first, Event):  # created, then refused later: replay (by started)
                self._drop_program()
                self._resolve(begin.reply, True)
                return
            self._drop_program()
            self.done = True
            self._end_segment("abandoned")
            self._resolve(begin.reply, False)
            return
        except BaseException as error:
            self._drop_program()
            self.done = True
            self._end_segment("abandoned")
            if not begin.reply.done():
                begin.reply.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        self._resolve(begin.reply, True)

    async def _load(self) -> None:
        """Rebuild state and program from the log, then write what is due (retrying if the
        run moves meanwhile)."""
        for _ in range(8):
            await self._load_once()
            if self.done or self.program is not None:
                return
        raise RuntimeError(f"run {self.run_id} kept changing while its actor loaded it")

    async def _load_once(self) -> None:
        async with self.s.loads:
            events = await self._read(after=None)
        self.state = fold(events)
        run = self.state.run
        if run is None or run.status.terminal:
            self.done = True
            return
        self.last = run.last_event_id
        history, self.current = effective_history(events)
        self._recount()
        self._segment(run, resumed=True)
        try:
            self.program = self.s.programs(run)
            for event in history:
                self.program.feed(event)
        except ProgramError as error:
            await self._fail(error)
            return
        triggers: list[NewEvent] = []
        if run.status is RunStatus.PENDING:
            triggers.append(self._speculate(ev.RunStarted(worker_id=self.s.worker_id)))
        running = self.s.executor.in_flight(self.run_id)
        for step_id in sorted(self.open_steps):
            step = self.state.steps[step_id]
            if (step_id, step.attempt) in self.finishing:
                continue  # its end is among the messages being handled again
            if step.status is StepStatus.RUNNING and running.get(step_id) != step.attempt:
                triggers.append(self._speculate(ev.StepStarted(), step_id))
            elif step.status is StepStatus.PENDING:
                when = step.retry_after or _now()
                self.s.timers.arm(self.run_id, f"step:{step_id}", when, StepDue(step_id))
        for wait_id, resume_at in self.open_waits.items():
            self.s.timers.arm(self.run_id, f"wait:{wait_id}", resume_at, WaitDue(wait_id))
        try:
            await self._round(triggers)
        except _Stale:
            self._drop_program()

    async def _read(self, after: str | None) -> list[Event]:
        events: list[Event] = []
        while True:
            page = await self.s.store.list_events(self.run_id, after=after, limit=1000)
            events.extend(page.items)
            if page.cursor is None:
                return events
            after = page.cursor

    def _recount(self) -> None:
        self.open_steps = {
            s.step_id
            for s in self.state.steps.values()
            if not s.terminal and s.step_id in self.current
        }
        self.open_waits = {
            w.wait_id: w.resume_at
            for w in self.state.waits.values()
            if w.status is WaitStatus.WAITING and w.wait_id in self.current
        }

    # -- messages -------------------------------------------------------------------------

    async def _process(self, messages: Sequence[Message]) -> None:
        if any(isinstance(m, Changed) for m in messages):
            await self._catch_up()
            if self.done or self.program is None:
                if self.done:
                    self._answer_ended(messages)
                return
        cancel = next((m for m in messages if isinstance(m, Cancel)), None)
        if cancel is not None:
            await self._cancel(cancel, messages)
            return
        triggers: list[NewEvent] = []
        claimed: set[tuple[str, str]] = set()
        replies: list[tuple[Message, int]] = []
        wakes: list[tuple[WakeUp, int, int]] = []
        for message in messages:
            if isinstance(message, StepFinished):
                self._on_step_finished(message, triggers, claimed)
            elif isinstance(message, WaitDue):
                self._complete_wait(message.wait_id, triggers, claimed)
            elif isinstance(message, StepDue):
                step = self.state.steps.get(message.step_id)
                if (
                    step is not None
                    and step.status is StepStatus.PENDING
                    and ("start", message.step_id) not in claimed
                ):
                    claimed.add(("start", message.step_id))
                    triggers.append(self._speculate(ev.StepStarted(), message.step_id))
            elif isinstance(message, HookPayload):
                hook = self.state.hooks.get(message.hook_id)
                if hook is None or hook.status is not HookStatus.ACTIVE:
                    self._fail_reply(message.reply, HookNotFoundError(message.token))
                    continue
                replies.append((message, len(triggers)))
                data = ev.HookReceived(payload=message.payload, token=message.token)
                triggers.append(self._speculate(data, message.hook_id))
            elif isinstance(message, WakeUp):
                start = len(triggers)
                for wait_id in list(self.open_waits):
                    if message.correlation_ids is None or wait_id in message.correlation_ids:
                        self._complete_wait(wait_id, triggers, claimed)
                wakes.append((message, start, len(triggers)))
        try:
            outcomes = await self._round(triggers)
        except _Stale:
            raise
        for message, index in replies:
            assert isinstance(message, HookPayload)
            if isinstance(outcomes[index], Event):
                self._resolve(message.reply, self.run_id)
        for wake, start, end in wakes:
            self._resolve(wake.reply, sum(1 for o in outcomes[start:end] if isinstance(o, Event)))

    def _on_step_finished(
        self, message: StepFinished, triggers: list[NewEvent], claimed: set[tuple[str, str]]
    ) -> None:
        self.s.executor.acknowledge(self.run_id, message.step_id, message.attempt)
        step = self.state.steps.get(message.step_id)
        key = ("finish", message.step_id)
        if (
            step is None
            or step.status is not StepStatus.RUNNING
            or step.attempt != message.attempt
            or message.step_id not in self.current
            or key in claimed
        ):
            return
        claimed.add(key)
        data: ev.EventData
        if message.kind == "completed":
            data = ev.StepCompleted(result=message.result or b"")
        elif message.kind == "retry":
            assert message.error is not None
            data = ev.StepRetrying(error=message.error, retry_after=message.retry_after)
        else:
            assert message.error is not None
            data = ev.StepFailed(error=message.error, attempts=message.attempt)
        triggers.append(self._speculate(data, message.step_id, message.annotations))

    def _complete_wait(
        self, wait_id: str, triggers: list[NewEvent], claimed: set[tuple[str, str]]
    ) -> None:
        resume_at = self.open_waits.get(wait_id)
        if resume_at is None or ("wait", wait_id) in claimed:
            return
        claimed.add(("wait", wait_id))
        triggers.append(self._speculate(ev.WaitCompleted(resume_at=resume_at), wait_id))

    async def _cancel(self, cancel: Cancel, messages: Sequence[Message]) -> None:
        requests = self._ending(ev.RunCancelled(reason=cancel.reason))
        outcomes, _, _ = await self.s.batcher.submit(requests)
        self._tell_parent(requests, outcomes)
        outcome = outcomes[0]
        if isinstance(outcome, Event):
            apply(self.state, outcome)
            self.last = outcome.event_id
            self._finish()
            self._resolve(cancel.reply, True)
        else:
            raise _Stale(outcome if isinstance(outcome, BaseException) else RuntimeError(), [])
        self._answer_ended(messages)

    async def _catch_up(self) -> None:
        events = await self._read(after=self.last)
        for event in events:
            if event.event_type == "run_rerun":
                self._drop_program()
                return
            apply(self.state, event)
            self.last = event.event_id
            self._note(event)
            if event.event_type in ev.TERMINAL_RUN_EVENTS:
                self._finish()
                return
            if self.program is not None:
                try:
                    self.program.feed(event)
                except ProgramError as error:
                    await self._fail(error)
                    return
            self._after_commit([event], foreign=True)

    # -- writing --------------------------------------------------------------------------

    def _speculate(
        self, data: ev.EventData, corr: str | None = None, annotations: tuple[Any, ...] = ()
    ) -> NewEvent:
        """An event this actor is about to write, fed to the program first."""
        at = _now()
        request = NewEvent(self.run_id, data, corr, annotations=annotations, created_at=at)
        if self.program is not None:
            self.program.feed(
                Event("", self.run_id, request.event_type, corr, data, at, request.spec_version)
            )
        return request

    def _from_program(self) -> list[NewEvent | AttachAnnotations]:
        program = self.program
        if program is None:
            return []
        run = self.state.run
        generation = run.generation if run is not None else 0
        requests: list[NewEvent | AttachAnnotations] = []
        for command in program.take_commands():
            if isinstance(command, StartStep):
                created = ev.StepCreated(
                    step_name=command.step_name,
                    input=command.input,
                    position=command.position,
                    generation=generation,
                )
                requests.append(NewEvent(self.run_id, created, command.step_id))
                requests.append(NewEvent(self.run_id, ev.StepStarted(), command.step_id))
            elif isinstance(command, StartWait):
                wait = ev.WaitCreated(
                    resume_at=command.resume_at, position=command.position, generation=generation
                )
                requests.append(NewEvent(self.run_id, wait, command.wait_id))
            elif isinstance(command, CreateHook):
                hook = ev.HookCreated(
                    token=command.token,
                    position=command.position,
                    generation=generation,
                    metadata=command.metadata,
                )
                requests.append(NewEvent(self.run_id, hook, command.hook_id))
            elif isinstance(command, DisposeHook):
                held = self.state.hooks.get(command.hook_id)
                if held is None or held.status is HookStatus.ACTIVE:
                    requests.append(NewEvent(self.run_id, ev.HookDisposed(), command.hook_id))
        notes = program.take_annotations()
        if notes:
            requests.append(AttachAnnotations(self.run_id, tuple(notes)))
        outcome = program.take_outcome()
        if isinstance(outcome, Completed):
            requests += self._ending(ev.RunCompleted(output=outcome.output))
        elif outcome is not None:
            requests += self._ending(ev.RunFailed(error=outcome.error))
        return requests

    def _ending(self, data: ev.RunCompleted | ev.RunFailed | ev.RunCancelled) -> list[NewEvent]:
        """The run's terminal event and, for a child run, its outcome for the parent."""
        requests = [NewEvent(self.run_id, data, created_at=_now())]
        run = self.state.run or self.announced
        if run is not None and run.parent_run_id and run.parent_hook_id:
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

    def _tell_parent(self, requests: Sequence[object], outcomes: Sequence[object]) -> None:
        """Wake the runs (a parent) that this actor's batch wrote to."""
        for request, outcome in zip(requests, outcomes, strict=True):
            run_id = getattr(request, "run_id", self.run_id)
            if run_id != self.run_id and isinstance(outcome, Event):
                self.s.deliver(run_id, Changed())

    async def _round(self, triggers: list[NewEvent], patient: bool = True) -> list[object]:
        """Write ``triggers`` and what the program asks for; act once committed."""
        requests: list[NewEvent | AttachAnnotations] = list(triggers)
        first: list[object] | None = None
        while True:
            requests += self._from_program()
            if not requests:
                return first or []
            guard = self.last if self.last is not None else ""
            requests = [
                msgspec.structs.replace(r, if_last_event_id=guard) if r.run_id == self.run_id else r
                for r in requests
            ]
            outcomes, emitted = await self._submit(requests, patient)
            if first is None:
                first = outcomes[: len(triggers)]
            self._tell_parent(requests, outcomes)
            committed: list[Event] = []
            refusal: BaseException | None = None
            for request, outcome, extra in zip(requests, outcomes, emitted, strict=True):
                if request.run_id != self.run_id:
                    continue
                if isinstance(outcome, Event):
                    committed.append(outcome)
                elif isinstance(outcome, BaseException) and refusal is None:
                    refusal = outcome
                committed.extend(extra)
            for event in committed:
                apply(self.state, event)
                self.last = event.event_id
                self._note(event)
            if self.s.observe is not None and self.last is not None:
                self.s.observe(self.run_id, self.last)
            failure = self._after_commit(committed)
            if refusal is not None:
                raise _Stale(refusal, first)
            if failure is not None:
                await self._fail(failure)
            if self.done:
                return first
            requests = []

    async def _submit(
        self, requests: list[NewEvent | AttachAnnotations], patient: bool
    ) -> tuple[list[object], list[list[Event]]]:
        delay = 0.05
        attempt = 0
        while True:
            try:
                outcomes, _, emitted = await self.s.batcher.submit(requests)
                return outcomes, emitted
            except StoreUnavailableError as error:
                attempt += 1
                if not patient and attempt >= 6:
                    raise
                log.warning("store unavailable for run %s (%s); retrying", self.run_id, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _note(self, event: Event) -> None:
        """Keep the counts of open steps and waits in step with the state."""
        corr, data = event.correlation_id, event.data
        if corr is None:
            return
        if isinstance(data, ev.StepCreated):
            self.current.add(corr)
            self.open_steps.add(corr)
        elif isinstance(data, ev.StepCompleted | ev.StepFailed):
            self.open_steps.discard(corr)
        elif isinstance(data, ev.WaitCreated):
            self.current.add(corr)
            self.open_waits[corr] = data.resume_at
        elif isinstance(data, ev.WaitCompleted):
            self.open_waits.pop(corr, None)
        elif isinstance(data, ev.HookCreated | ev.HookConflict):
            self.current.add(corr)

    def _after_commit(self, events: Sequence[Event], foreign: bool = False) -> ProgramError | None:
        """Act on committed events: start bodies, arm timers, report conflicts, end the run."""
        failure: ProgramError | None = None
        observer, run = self.s.observer, self.state.run
        if observer is not None and run is not None and events:
            observer.committed(run, events)
        for event in events:
            data, corr = event.data, event.correlation_id or ""
            if isinstance(data, ev.StepStarted) and not foreign:
                self._start_body(corr, event)
            elif isinstance(data, ev.StepRetrying):
                when = data.retry_after or event.created_at
                self.s.timers.arm(self.run_id, f"step:{corr}", when, StepDue(corr))
            elif isinstance(data, ev.WaitCreated):
                self.s.timers.arm(self.run_id, f"wait:{corr}", data.resume_at, WaitDue(corr))
            elif isinstance(data, ev.HookCreated) and self.s.hooks is not None:
                self.s.hooks[data.token] = (self.run_id, corr)
            elif isinstance(data, ev.HookDisposed) and self.s.hooks is not None:
                self._forget_hook(corr)
            elif isinstance(data, ev.HookConflict) and not foreign and self.program is not None:
                try:
                    self.program.feed(event)
                except ProgramError as error:
                    failure = error
            elif event.event_type in ev.TERMINAL_RUN_EVENTS:
                self._finish()
        return failure

    def _start_body(self, step_id: str, event: Event) -> None:
        run = self.state.run
        step = self.state.steps[step_id]
        assert run is not None
        self.s.executor.start(
            StepWork(
                run_id=self.run_id,
                step_id=step_id,
                step_name=step.step_name,
                input=step.input,
                attempt=step.attempt,
                started_at=event.created_at,
                generation=run.generation,
                workflow_name=run.workflow_name,
                run_started_at=run.started_at or run.created_at,
            )
        )

    async def _fail(self, error: BaseException) -> None:
        code = error.code if isinstance(error, ProgramError) else "RUNTIME_ERROR"
        info = ErrorInfo(message=str(error), type=type(error).__name__, code=code)
        self._drop_program()
        requests = self._ending(ev.RunFailed(error=info))
        outcomes, _, _ = await self.s.batcher.submit(requests)
        self._tell_parent(requests, outcomes)
        if isinstance(outcomes[0], Event):
            apply(self.state, outcomes[0])
            self.last = outcomes[0].event_id
        self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.s.executor.cancel(self.run_id)
        self.s.timers.disarm_run(self.run_id)
        self._drop_program()
        for hook_id in list(self.state.hooks):
            self._forget_hook(hook_id)
        run = self.state.run
        self._end_segment(run.status.value if run is not None else "stopped")
        if self.s.on_end is not None and run is not None:
            self.s.on_end(run)

    def _forget_hook(self, hook_id: str) -> None:
        hook, hooks = self.state.hooks.get(hook_id), self.s.hooks
        if (
            hook is not None
            and hooks is not None
            and hooks.get(hook.token) == (self.run_id, hook_id)
        ):
            del hooks[hook.token]

    def _segment(self, run: Run, resumed: bool) -> None:
        if self.s.observer is not None and not self.in_segment:
            self.in_segment = True
            self.s.observer.segment_started(run, resumed)

    def _end_segment(self, reason: str) -> None:
        if self.s.observer is not None and self.in_segment:
            self.in_segment = False
            self.s.observer.segment_ended(self.state.run or self.announced, reason)

    def _drop_program(self) -> None:
        if self.program is not None:
            self.program.close()
            self.program = None

    def _waiting_only(self) -> bool:
        """Only waiting: no step open, no sleep due within ``passivate_after`` seconds."""
        if self.open_steps or self.s.executor.in_flight(self.run_id):
            return False
        if not self.open_waits:
            return True
        soonest = min(self.open_waits.values())
        return (soonest - _now()).total_seconds() > self.s.passivate_after

    # -- replies ----------------------------------------------------------------------------

    @staticmethod
    def _resolve(future: asyncio.Future[Any], value: Any) -> None:
        if not future.done():
            future.set_result(value)

    @staticmethod
    def _fail_reply(future: asyncio.Future[Any], error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def _answer_ended(self, messages: Sequence[Message]) -> None:
        """Answer requests that arrived after the run ended."""
        for message in messages:
            if isinstance(message, Cancel):
                self._resolve(message.reply, False)
            elif isinstance(message, WakeUp):
                self._resolve(message.reply, 0)
            elif isinstance(message, HookPayload):
                self._fail_reply(message.reply, HookNotFoundError(message.token))
            elif isinstance(message, Begin):
                self._resolve(message.reply, False)
