"""The run actor: the shell around a run's core. It executes effects; it decides nothing.

Each batch of messages goes to the core (``actors.core``); the shell then executes the
effects the core asks for, in order. Reads, writes and backoffs are awaited and their results
fed back to the core; everything else (start a body, arm a timer, answer a caller, tell the
host the run ended) is done at once. A store failure is not a crash: it is reported to the
core, which backs off and tries again. Anything else that escapes is an engine bug: the actor
system restarts the actor (a fresh core reloads the run) and, if it keeps crashing, gives up,
and the shell records the failure in the run's log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from persistence import Event, NewEvent, Run, Store
from persistence import events as ev
from persistence.errors import CorruptedDataError, StoreError, StoreUnavailableError

from . import effects as fx
from .actor import STOP, Actor, _Stop
from .asks import answer_gone
from .batcher import Batcher, BatcherClosed
from .clock import SYSTEM_CLOCK, Clock
from .core import CoreConfig, RunCore
from .messages import Message, RunElsewhere, StepWork
from .observer import RunObserver
from .program import ProgramFactory, error_info
from .requests import ending_requests
from .timers import Timers

log = logging.getLogger("actorflow.actors")


class StepExecutor(Protocol):
    """Runs step bodies; reports each attempt's end to the run as a ``StepFinished``."""

    def start(self, work: StepWork) -> None: ...

    def in_flight(self, run_id: str) -> dict[str, int]:
        """step id → attempt, for the attempts of this run running or whose end was reported
        but not yet acknowledged."""
        ...

    def acknowledge(self, run_id: str, step_id: str, attempt: int) -> None:
        """The run has the end of this attempt in hand."""
        ...


class RunHost(Protocol):
    """What the runtime keeps for its runs, told by their actors."""

    def hook_live(self, token: str, run_id: str, hook_id: str) -> None:
        """Payloads for ``token`` go to ``run_id`` (no store read needed)."""

    def hook_gone(self, token: str, run_id: str, hook_id: str) -> None:
        """The hook was disposed."""

    def committed(self, run_id: str, last_event_id: str) -> None:
        """The run's log (as this worker wrote or read it) ends at ``last_event_id``."""

    def ended(self, run: Run) -> None:
        """The run has ended: release everything held for it."""

    def released(self, run_id: str, why: str) -> None:
        """This worker let the run go without ending it."""

    def notify(self, run_id: str) -> None:
        """Another run's log changed (a child told its parent)."""

    def close_streams(self, run_id: str, namespaces: tuple[str, ...]) -> None:
        """Close these streams of the run (retrying until the store takes it)."""

    def fence(self, run_id: str) -> int | None:
        """The lease epoch this worker holds the run at (None: it does not hold it)."""

    def lease_taken(self, run_id: str, epoch: int) -> None:
        """The run's first write took its lease at ``epoch``: this worker holds it."""

    async def take_lease(self, run_id: str) -> int | None:
        """Take (or keep) the run's lease; its epoch, or None if another worker holds it
        (raises ``StoreError`` if the store fails)."""


@dataclass
class RunServices:
    """What every run actor of a runtime shares."""

    store: Store
    batcher: Batcher
    timers: Timers
    executor: StepExecutor
    programs: ProgramFactory
    host: RunHost
    config: CoreConfig = field(default_factory=CoreConfig)
    observer: RunObserver | None = None
    loads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))
    """How many runs may read their whole logs at once (recovering thousands of runs)."""
    clock: Clock = SYSTEM_CLOCK
    """The time of the run's events (its workflow clock) and of its timers."""


TRANSIENT = (StoreUnavailableError,)
"""Store errors that may pass: the core backs off and tries again."""


class RunActor(Actor[Message]):
    """The shell of one run's core; see the module docstring."""

    __slots__ = ("closed", "core", "failing", "run_id", "s")

    def __init__(self, run_id: str, services: RunServices) -> None:
        self.run_id = run_id
        self.s = services
        self.core = RunCore(run_id, services.programs, services.config)
        self.closed = False
        self.failing = False  # the store failed this run's last I/O

    async def handle(self, messages: Sequence[Message]) -> _Stop | None:
        if self.closed:
            return STOP
        waiting = [m for m in messages if not _answered(m)]  # answered before a crash
        try:
            self.core.receive(waiting, self.s.clock.now())
            await self._drive()
        except BatcherClosed:  # the runtime is leaving; its callers are told there
            self.closed = True
            self.core.abandon()
            self._observe(self.core.take())
            return STOP
        except Exception:  # a crash: the system restarts the actor with a fresh core
            self.core.abandon()
            self._observe(self.core.take())
            raise
        return STOP if self.core.stopped else None

    async def stopped(self) -> None:
        if not self.closed:
            self.core.abandon()
            self._observe(self.core.take())

    async def _drive(self) -> None:
        while effects := self.core.take():
            for effect in effects:
                done_at_once = _AT_ONCE.get(type(effect))
                if done_at_once is not None:
                    done_at_once(self, effect)
                elif isinstance(effect, fx.Write | fx.Read | fx.Backoff):
                    result = await self._io(effect)
                    self.core.receive((result,), self.s.clock.now())
                else:
                    self._observe([effect])

    async def _io(self, effect: fx.Write | fx.Read | fx.Backoff) -> fx.Result:
        """Carry out an I/O effect; its result for the core."""
        if isinstance(effect, fx.Write):
            try:
                share = await self.s.batcher.submit(effect.requests)
            except StoreError as error:
                return self._failed("writing", error)
            self.failing = False
            return fx.Written(share.outcomes, share.emitted, share.leases)
        if isinstance(effect, fx.Read):
            return await self._read(effect.after, effect.claim)
        await anyio.sleep(effect.seconds)
        return fx.Retry()

    async def _read(self, after: str | None, claim: bool = False) -> fx.Loaded | fx.IOFailed:
        events: list[Event] = []
        try:
            if claim:
                await self.s.host.take_lease(self.run_id)
            if after is None:
                async with self.s.loads:
                    events = await _read_log(self.s.store, self.run_id, None)
            else:
                events = await _read_log(self.s.store, self.run_id, after)
        except CorruptedDataError:
            raise  # not the store's state but the run's data: the actor gives up on it
        except StoreError as error:
            return self._failed("reading", error)
        self.failing = False
        running = self.s.executor.in_flight(self.run_id)
        return fx.Loaded(events, running, self.s.host.fence(self.run_id))

    def _failed(self, doing: str, error: StoreError) -> fx.IOFailed:
        """A store failure (raised, not a refusal returned) as the core's input; logged once
        per outage of this run, not at every retry."""
        transient = isinstance(error, TRANSIENT)
        log.log(
            logging.DEBUG if self.failing else logging.WARNING,
            "store failed %s run %s (%s: %s); retrying until it is back",
            doing,
            self.run_id,
            type(error).__name__,
            error,
        )
        self.failing = True
        return fx.IOFailed(error, transient)

    def _observe(self, effects: Sequence[fx.Effect]) -> None:
        observer = self.s.observer
        if observer is None:
            return
        for effect in effects:
            if isinstance(effect, fx.Committed):
                observer.committed(effect.run, effect.events)
            elif isinstance(effect, fx.SegmentStarted):
                observer.segment_started(effect.run, effect.resumed)
            elif isinstance(effect, fx.SegmentEnded):
                observer.segment_ended(effect.run, effect.reason)

    async def give_up(self, error: BaseException, messages: Sequence[Message]) -> None:
        """The actor kept crashing: record the run's failure (with the traceback), fenced by
        the last event this worker knew, and release the run."""
        self.core.abandon()
        self._observe(self.core.take())
        code = "CORRUPTED_EVENT_LOG" if isinstance(error, CorruptedDataError) else "RUNTIME_ERROR"
        info = error_info(error, code)
        info = ev.ErrorInfo(
            message=f"the run's actor kept failing: {info.message}",
            type=info.type,
            traceback=info.traceback,
            code=code,
        )
        run = self.core.run
        data = ev.RunFailed(error=info)
        requests = (
            ending_requests(run, data, self.s.clock.now())
            if run is not None
            else [NewEvent(self.run_id, data, created_at=self.s.clock.now())]
        )
        guard = self.core.view.last
        requests[0] = _guarded(requests[0], guard, self.core.fence)
        outcomes = await self._write_patiently(requests)
        if isinstance(outcomes[0], Event):
            for request, outcome in zip(requests[1:], outcomes[1:], strict=True):
                if isinstance(outcome, Event):
                    self.s.host.notify(request.run_id)
            ended = await _get_run(self.s.store, self.run_id)
            self.s.host.ended(ended)
            gone = "ended"
        else:
            log.warning("run %s moved on while its actor was failing: %s", self.run_id, outcomes)
            self.s.host.released(self.run_id, "its actor kept failing")
            gone = "released"
        for effect in answer_gone([m for m in messages if not _answered(m)], gone, self.run_id):
            if isinstance(effect, fx.Reply):
                _reply(effect)

    async def _write_patiently(self, requests: list[NewEvent]) -> list[object]:
        delay = self.s.config.backoff_base
        while True:
            try:
                share = await self.s.batcher.submit(requests)
                return list(share.outcomes)
            except TRANSIENT:
                await anyio.sleep(delay)
                delay = min(delay * 2, self.s.config.backoff_cap)


# -- effects done at once: one lookup by the effect's type, not a chain of checks ----------


def _start_body(a: RunActor, effect: fx.StartBody) -> None:
    a.s.executor.start(effect.work)


def _acknowledge(a: RunActor, effect: fx.Acknowledge) -> None:
    a.s.executor.acknowledge(a.run_id, effect.step_id, effect.attempt)


def _arm(a: RunActor, effect: fx.Arm) -> None:
    a.s.timers.arm(a.run_id, effect.key, effect.at, effect.message)


def _disarm(a: RunActor, effect: fx.Disarm) -> None:
    a.s.timers.disarm(a.run_id, effect.key)


def _claimed(a: RunActor, effect: fx.Claimed) -> None:
    a.s.host.lease_taken(a.run_id, effect.epoch)


def _answer(a: RunActor, effect: fx.Reply) -> None:
    _reply(effect)


def _hook_live(a: RunActor, effect: fx.HookLive) -> None:
    a.s.host.hook_live(effect.token, a.run_id, effect.hook_id)


def _hook_gone(a: RunActor, effect: fx.HookGone) -> None:
    a.s.host.hook_gone(effect.token, a.run_id, effect.hook_id)


def _notify(a: RunActor, effect: fx.Notify) -> None:
    a.s.host.notify(effect.run_id)


def _close_streams(a: RunActor, effect: fx.CloseStreams) -> None:
    a.s.host.close_streams(a.run_id, effect.namespaces)


def _committed(a: RunActor, effect: fx.Committed) -> None:
    a.s.host.committed(a.run_id, effect.events[-1].event_id)
    a._observe([effect])


def _ended(a: RunActor, effect: fx.Ended) -> None:
    a.s.host.ended(effect.run)


def _released(a: RunActor, effect: fx.Released) -> None:
    a.s.host.released(a.run_id, effect.why)


_AT_ONCE: dict[type, Callable[[RunActor, Any], None]] = {
    fx.StartBody: _start_body,
    fx.Acknowledge: _acknowledge,
    fx.Arm: _arm,
    fx.Disarm: _disarm,
    fx.Claimed: _claimed,
    fx.Reply: _answer,
    fx.HookLive: _hook_live,
    fx.HookGone: _hook_gone,
    fx.Notify: _notify,
    fx.CloseStreams: _close_streams,
    fx.Committed: _committed,
    fx.Ended: _ended,
    fx.Released: _released,
}
"""How each effect that needs no waiting is carried out (I/O effects are awaited; the rest,
segments and stops, are only observed)."""


async def _read_log(store: Store, run_id: str, after: str | None) -> list[Event]:
    events: list[Event] = []
    while True:
        page = await store.list_events(run_id, after=after, limit=1000)
        events.extend(page.items)
        if page.cursor is None:
            return events
        after = page.cursor


async def _get_run(store: Store, run_id: str) -> Run:
    delay = 0.05
    while True:
        try:
            return await store.get_run(run_id)
        except TRANSIENT:
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _guarded(request: NewEvent, guard: str | None, fence: int | None) -> NewEvent:
    """The give-up write: conditional on the last event known (if any), fenced."""
    import msgspec

    return msgspec.structs.replace(request, if_last_event_id=guard, fence=fence)


def _answered(message: Message) -> bool:
    reply = getattr(message, "reply", None)
    return isinstance(reply, asyncio.Future) and reply.done()


def _reply(effect: fx.Reply) -> None:
    future = effect.reply
    if not isinstance(future, asyncio.Future) or future.done():
        return
    if effect.error is not None:
        future.set_exception(effect.error)
    else:
        future.set_result(effect.value)


__all__ = ["RunActor", "RunElsewhere", "RunHost", "RunServices", "StepExecutor"]
