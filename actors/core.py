"""The run core: one run's life in a worker, as a state machine with no I/O.

Inputs are the messages of the run's mailbox (a step finished, a timer, a hook payload, a
cancel, a wake-up, a change by another writer, a shutdown...) and the results of the I/O it
asked for (a log read, a write's outcomes, a failure, a backoff that ended). Outputs are
effects (``actors.effects``). No asyncio, no store and no clock: the shell passes the time in.

The hot path: a message becomes an event (``step_completed``...) that is fed to the program
*before* it is written, so the workflow has already made its next durable calls; the event
and those calls go in one conditional write. Nothing is acted on (a body started, a timer
armed, a caller answered) until the write is a fact. The cold path: the log is read, folded
and fed to a fresh program, and what is due is written. Both feed the program the same way,
so a replay and the live run are one code path (see ``runtime/REPLAY.md``).

Every failure is an input handled here, in the one place that knows the run's state:

- a refused write (another writer moved the run): the speculation is void; the log is read
  again and the messages handled again (a caller whose event was stored is answered);
- a failed read or write (the store is down, busy or full): the same I/O again after a
  capped, jittered exponential backoff, for as long as it takes; the run stays here;
- anything the program raises: the run's outcome, written with the events before it, so a
  step whose completion was fed is never run again;
- the end of the run, however it is learnt: one path (``_end``) releases all it held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import msgspec

from persistence import Event, NewAnnotation, NewEvent, fold
from persistence import events as ev
from persistence.batch import Request
from persistence.errors import EntityConflictError, LeaseLostError
from persistence.state import RunStatus

from . import effects as fx
from . import triggers
from .asks import Asked, Pending, answer_from_log, answer_gone, answer_written
from .life import CoreConfig, Phase, RunLife
from .messages import (
    Begin,
    Cancel,
    Changed,
    Drain,
    HookPayload,
    Idle,
    LeaseLost,
    Message,
    StepFinished,
    WakeUp,
)
from .program import UnknownWorkflow
from .requests import ending_requests
from .view import stream_closes


class RunCore(RunLife):
    """The state machine of one run in one worker; see the module docstring."""

    __slots__ = ()

    # -- the shell's interface ------------------------------------------------------------

    def receive(self, inputs: Iterable[Message | fx.Result], now: datetime) -> None:
        """Take messages and I/O results, in order; effects pile up for :meth:`take`."""
        self.now = now
        for item in inputs:
            if isinstance(item, fx.Loaded):
                self._on_loaded(item)
            elif isinstance(item, fx.Written):
                self._on_written(item)
            elif isinstance(item, fx.IOFailed):
                self._on_failed(item)
            elif isinstance(item, fx.Retry):
                assert self.io is not None
                self._emit(self.io)
            else:
                self.inbox.append(item)
        self._pump()

    def take(self) -> list[fx.Effect]:
        """The effects to execute now, in order (an I/O effect, if any, is the last)."""
        taken, self._effects = self._effects, None
        return [] if taken is None else taken

    # -- the mailbox ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Handle what waits in the inbox while no I/O is out."""
        while self.io is None and self.phase is not Phase.DONE:
            if self.phase is Phase.PASSIVE:
                if all(isinstance(m, Idle) for m in self.inbox):
                    self.inbox.clear()
                    return
                self.phase = Phase.FRESH
            if self.phase is Phase.FRESH:
                if any(isinstance(m, Changed) for m in self.inbox):  # a full read covers them
                    self.inbox = [m for m in self.inbox if not isinstance(m, Changed)]
                first = self.inbox[0] if self.inbox else None
                if isinstance(first, Begin) and self.unsure is None and self.run is None:
                    self.inbox.pop(0)
                    self._begin(first)
                else:
                    self._read(None)
                continue
            if not self.inbox:
                self._settle()
                return
            batch = list(self.inbox)
            self.inbox.clear()
            self._handle(batch)
        if self.phase is Phase.DONE and self.inbox:
            batch = list(self.inbox)
            self.inbox.clear()
            self._emit(*answer_gone(batch, self.gone, self.run_id))

    def _handle(self, batch: list[Message]) -> None:
        kinds = {type(m) for m in batch}  # one pass; most batches hold one kind
        if Drain in kinds:
            self.draining = True
        if Idle in kinds or Drain in kinds:
            idle = [m.marker for m in batch if isinstance(m, Idle)]
            batch = [m for m in batch if not isinstance(m, Idle | Drain)]
            if not batch:
                if idle:
                    self._idle(max(idle))
                return
        if LeaseLost in kinds:
            self._release("its lease went to another worker", batch)
            return
        if Changed in kinds:
            self.inbox[:0] = [m for m in batch if not isinstance(m, Changed)]
            self._read(self.view.last)
            return
        if Begin in kinds:
            for begin in [m for m in batch if isinstance(m, Begin)]:
                self._emit(fx.Reply(begin.reply, False))  # the run exists already
                batch.remove(begin)
        if Cancel in kinds:
            cancels = [m for m in batch if isinstance(m, Cancel)]
            run = self.view.run
            assert run is not None
            data = ev.RunCancelled(reason=cancels[0].reason)
            pending = Pending(list(ending_requests(run, data, self.now)), batch)
            pending.asked = [Asked(cancel, 0, 1) for cancel in cancels]
            self._write(pending)
            return
        planned = triggers.plan(batch, self.view.state, self.now, self._may_start)
        self._emit(*planned.effects)
        for step_id, attempt in planned.ended_bodies:
            if self.view.bodies.get(step_id) == attempt:
                del self.view.bodies[step_id]
        pending = Pending([], batch)
        for message, wanted in planned.asks:
            first = len(pending.requests)
            for trigger in wanted:
                pending.requests.append(
                    self._speculate(trigger.data, trigger.corr, trigger.annotations)
                )
            if first < len(pending.requests) and isinstance(message, HookPayload | WakeUp):
                pending.asked.append(Asked(message, first, len(pending.requests)))
        self._round(pending)

    @property
    def _may_start(self) -> bool:
        return self.hosted and not self.draining

    # -- speculation and writes ------------------------------------------------------------

    def _speculate(
        self,
        data: ev.EventData,
        corr: str | None = None,
        annotations: tuple[NewAnnotation, ...] = (),
    ) -> NewEvent:
        """An event this core is about to write, fed to the program first."""
        return self.driver.speculate(data, corr, self.now, annotations)

    def _from_program(self) -> list[Request]:
        """What the program asks for: its new durable calls, annotations and outcome."""
        run = self.run
        if run is None or not self.hosted:
            return []
        return self.driver.take(run, self.view.state.hooks, not self.draining, self.now)

    def _round(self, pending: Pending) -> None:
        """Write the triggers and what the program asks for (nothing to write: settle)."""
        pending.requests += self._from_program()
        if pending.requests:
            self._write(pending)

    def _write(self, pending: Pending) -> None:
        guard, fence = self.view.last or "", self.fence
        pending.requests = [
            msgspec.structs.replace(r, if_last_event_id=guard, fence=fence)
            if r.run_id == self.run_id
            else r
            for r in pending.requests
        ]
        self.pending = pending
        self.io = fx.Write(pending.requests)
        self._emit(self.io)

    def _read(self, after: str | None) -> None:
        self.io = fx.Read(after, claim=self.claiming and after is None)
        self._emit(self.io)

    # -- I/O results ----------------------------------------------------------------------

    def _on_failed(self, failed: fx.IOFailed) -> None:
        """The store failed: the same I/O again after a backoff, for as long as it takes.
        A new run's caller is told after a few tries (at once if retrying cannot help); its
        write stops there, and the log is read to learn whether a try was stored after all."""
        assert self.io is not None, "an I/O failure with no I/O out"
        self.failures += 1
        pending = self.pending
        begin = pending.begin if pending is not None else None
        if begin is not None and (
            not failed.transient or self.failures >= self.config.start_attempts
        ):
            # the caller is told; a new run is not written after its caller heard it failed
            self._emit(fx.Reply(begin.reply, error=failed.error))
            self.io = self.pending = self.announced = None
            self.driver.drop()
            self._segment_end("abandoned")
            if not failed.transient and self.failures == 1:  # nothing was ever written
                self._done("missing")
                return
            # an earlier try may have been stored (its reply lost): look
            self.phase = Phase.FRESH
            self.failures = 0
            return
        exponent = self.failures - 1 if failed.transient else 64
        delay = min(self.config.backoff_cap, self.config.backoff_base * 2.0**exponent)
        self._emit(fx.Backoff(delay * (0.5 + 0.5 * self.config.rng.random())))

    def _on_written(self, written: fx.Written) -> None:
        pending = self.pending
        assert pending is not None and isinstance(self.io, fx.Write)
        self.io, self.pending, self.failures = None, None, 0
        committed: list[Event] = []
        refused = False
        accepted: set[int] = set()
        results = zip(pending.requests, written.outcomes, written.emitted, strict=True)
        for index, (request, outcome, extra) in enumerate(results):
            if isinstance(outcome, LeaseLostError):
                self._release("its lease went to another worker", pending.messages)
                return
            if isinstance(outcome, BaseException):
                refused = refused or request.run_id == self.run_id
                continue
            accepted.add(index)
            if request.run_id != self.run_id:
                self._emit(fx.Notify(request.run_id))
                continue
            if isinstance(outcome, Event):
                committed.append(outcome)
            committed.extend(extra)
        if pending.begin is not None:
            self._answer_begin(pending, written.outcomes[0], written.leases)
        self._commit(committed, foreign=False)
        self._emit(*answer_written(pending, accepted, self.run_id))
        if not refused:
            if not self.ended:
                self._round(Pending([]))
        elif self.ended:
            self.inbox[:0] = pending.messages  # they get ended answers
        else:
            self.unsure = pending
            self._invalidate()

    def _answer_begin(self, pending: Pending, first: object, leases: Mapping[str, int]) -> None:
        begin = pending.begin
        assert begin is not None
        pending.forget(begin)
        if isinstance(first, Event):
            epoch = leases.get(self.run_id) if self.claiming else None
            if epoch is not None:  # the write took the run's lease: fence what follows
                self.fence, self.claiming = epoch, False
                self._emit(fx.Claimed(epoch))
            self._emit(fx.Reply(begin.reply, True))
            return
        self._segment_end("abandoned")
        if isinstance(first, EntityConflictError):
            self._emit(fx.Reply(begin.reply, False))  # it existed (perhaps from our retry)
        else:
            error = first if isinstance(first, BaseException) else RuntimeError(repr(first))
            self._emit(fx.Reply(begin.reply, error=error))

    def _on_loaded(self, loaded: fx.Loaded) -> None:
        read = self.io
        assert isinstance(read, fx.Read)
        self.io, self.failures = None, 0
        if read.after is None:
            self._load(loaded)
        else:
            self._catch_up(loaded.events)

    # -- the cold path ----------------------------------------------------------------------

    def _load(self, loaded: fx.Loaded) -> None:
        """Rebuild state and program from the whole log; write what is due."""
        self.fence, self.claiming = loaded.fence, False
        unsure, self.unsure = self.unsure, None
        if unsure is not None:
            replies, again = answer_from_log(unsure, loaded.events, self.run_id)
            self._emit(*replies)
            self.inbox[:0] = again
        history = self.view.load(loaded.events)
        run = self.view.run
        if run is None:
            begin = next((m for m in self.inbox if isinstance(m, Begin)), None)
            if begin is None:
                self._done("missing")
            else:
                self.inbox.remove(begin)
                self._begin(begin)
            return
        self.phase = Phase.READY
        if run.status.terminal:
            self._end()
            return
        if self.fence is None:  # another worker holds it (or nobody): it is not run here
            self._release("this worker does not hold its lease", ())
            return
        try:
            self.driver.start(self.programs(run))
        except UnknownWorkflow:
            self.hosted = False  # handled without a program, then released
            return
        except Exception as error:  # it cannot be built for this run, now or on a retry
            self.driver.start(None, error)
        self._segment_start(run, resumed=True)
        for event in history:
            self.driver.feed(event)
        pending = Pending([])
        if run.status is RunStatus.PENDING:
            started = ev.RunStarted(worker_id=self.config.worker_id)
            pending.requests.append(self._speculate(started))
        finishing = {(m.step_id, m.attempt) for m in self.inbox if isinstance(m, StepFinished)}
        restart, effects = self.view.due(loaded.running, finishing, self.draining)
        self._emit(*effects)
        for step_id in restart:  # an attempt that never reported (its process died)
            pending.requests.append(self._speculate(ev.StepStarted(), step_id))
        closes = stream_closes(history)
        if closes:
            self._emit(fx.CloseStreams(closes))
        self._round(pending)

    def _begin(self, begin: Begin) -> None:
        """Write a new run with its first commands, without reading first."""
        events = [
            Event("", r.run_id, r.event_type, None, r.data, r.created_at or self.now)
            for r in begin.events
        ]
        run = fold(events).run
        assert run is not None
        self.announced, self.phase, self.fence = run, Phase.READY, begin.fence
        self.claiming = begin.events[0].claim is not None
        try:
            self.driver.start(self.programs(run))
        except Exception as error:  # nothing is written: the caller is told
            self._emit(fx.Reply(begin.reply, error=error))
            self._done("missing")
            return
        self._segment_start(run, resumed=False)
        for event in events:
            self.driver.feed(event)
        pending = Pending(list(begin.events), [begin], [Asked(begin, 0, 1)], begin)
        self._round(pending)

    def _catch_up(self, events: Sequence[Event]) -> None:
        """Apply what other writers appended; a rerun means a full replay."""
        for event in events:
            if event.event_type == "run_rerun":
                self._invalidate()
                return
            try:
                self._commit([event], foreign=True)
            except Exception:
                self._invalidate()  # the state here is not the log's: read it all
                return
            if self.ended:
                return
        self._round(Pending([]))

    def _invalidate(self) -> None:
        """What this core believes is not the log: drop the program, read everything."""
        self.driver.forget()
        if not self.ended:
            self.phase = Phase.FRESH

    def _commit(self, events: list[Event], foreign: bool) -> None:
        """Facts: fold them, feed the program what it has not seen, act on them."""
        if not events:
            return
        after = self.view.commit(events, foreign)
        run = self.view.run
        assert run is not None
        self._emit(fx.Committed(run, events), *after.effects)
        if foreign:
            for event in events:
                self.driver.feed(event)
        for conflict in after.conflicts:
            self.driver.feed(conflict)
        if after.ended:
            self._end()


__all__ = ["CoreConfig", "Phase", "RunCore"]
