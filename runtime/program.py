"""A run's program: the workflow coroutine on its deterministic loop, and its durable calls.

The run actor feeds the run's events in log order (:meth:`WorkflowProgram.feed`); after each,
the loop runs until quiescent. Every durable call the code makes (step, sleep, hook, child)
gets the next position in call order and an id derived from the run, the rerun generation
and that position. ``*_created`` events in the log confirm calls at their positions (a
different call there is a :class:`NonDeterminismError`); completions resolve the futures of
the calls they name. Calls the log does not hold yet are the new commands the actor writes.
See ``REPLAY.md`` next to this file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random as _random
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors.program import (
    Command,
    Completed,
    CreateHook,
    DisposeHook,
    Failed,
    Outcome,
    StartStep,
    StartWait,
)
from actors.program import error_info as _error_info
from persistence import ErrorInfo, Event, NewAnnotation, Run, codec
from persistence import events as ev
from persistence.ids import CHILD, HOOK, STEP, WAIT, command_id

from .commands import command_id_of, describe, logged, signature
from .errors import (
    USER_ERROR,
    CorruptedLogError,
    HookConflictError,
    NonDeterminismError,
    SerializationError,
    StepFailedError,
)
from .hooks import WorkflowHook
from .loop import WorkflowLoop, _get_running_loop, _set_running_loop

if TYPE_CHECKING:
    from .registry import StepFunction, WorkflowFunction

log = logging.getLogger("actorflow.workflow")


class Evicted(BaseException):
    """Raised into workflow code that makes a durable call while its program is dropped.

    A ``BaseException``, so ``except Exception`` in workflow code cannot swallow it.
    """


class _Slot:
    """A durable call waiting for its result."""

    __slots__ = ("future", "handle", "hook", "step")

    def __init__(
        self,
        future: asyncio.Future[Any] | None = None,
        step: StepFunction[Any, Any] | None = None,
        handle: asyncio.TimerHandle | None = None,
        hook: WorkflowHook | None = None,
    ) -> None:
        self.future = future
        self.step = step
        self.handle = handle
        self.hook = hook


def error_info(error: BaseException, code: str = USER_ERROR) -> ErrorInfo:
    """An exception as the log records it (``USER_ERROR`` unless told otherwise)."""
    return _error_info(error, code)


async def _result_of(future: asyncio.Future[Any]) -> Any:
    return await future


class WorkflowProgram:
    """The program of one run (implements ``actors.program.Program``)."""

    def __init__(self, run: Run, workflow: WorkflowFunction[Any, Any], runtime: Any = None) -> None:
        self.run = run
        self.workflow = workflow
        self.runtime = runtime
        self.generation = run.generation
        self.clock = run.created_at
        self.started_at = run.started_at or run.created_at
        self._rng: _random.Random | None = None
        self.loop = WorkflowLoop(self)  # type: ignore[abstract]
        self._next = 0
        self._commands: dict[int, Command] = {}
        self._unwritten: dict[int, None] = {}
        self._effects: list[Command] | None = None  # None while empty (idle runs are many)
        self._slots: dict[str, _Slot] = {}
        self._notes: list[NewAnnotation] | None = None
        self._note_seq = 0
        self._main: asyncio.Task[Any] | None = None
        self._outcome: Outcome | None = None
        self._reported = False
        self._closing = False

    # -- the clock and the deterministic helpers ------------------------------------------

    def loop_time(self) -> float:
        """The workflow clock for its loop (``LoopOwner``)."""
        return self.clock.timestamp()

    def now(self) -> datetime:
        """The workflow clock: the time of the last event delivered."""
        return self.clock

    @property
    def rng(self) -> _random.Random:
        """The run's generator, seeded by the secret drawn at its creation (runs made before
        runs had one: by the run id). Made on first use: seeding costs."""
        if self._rng is None:
            self._rng = _random.Random(self.run.seed or self.run.run_id)
        return self._rng

    def random(self) -> float:
        return self.rng.random()

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # -- feeding events -----------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Deliver ``event`` (the next in log order) and run the code to quiescence."""
        if event.created_at > self.clock:
            self.clock = event.created_at
        data = event.data
        corr = event.correlation_id or ""
        if isinstance(data, ev.RunStarted):
            self._start_main(event)
        elif isinstance(data, ev.StepCreated | ev.WaitCreated | ev.HookCreated | ev.HookConflict):
            self._confirm(data, corr)
            if isinstance(data, ev.HookConflict):
                slot = self._slots.pop(corr, None) or self._slot(corr, event)
                slot.hook._conflict(data.conflicting_run_id)  # type: ignore[union-attr]
        elif isinstance(data, ev.StepCompleted):
            self._resolve_step(corr, event, data)
        elif isinstance(data, ev.StepFailed):
            slot = self._done(corr, event)
            error = data.error
            name = slot.step.name if slot.step is not None else "?"
            if slot.future is not None and not slot.future.done():
                slot.future.set_exception(
                    StepFailedError(name, error.type, error.message, error.traceback, data.attempts)
                )
        elif isinstance(data, ev.WaitCompleted):
            slot = self._done(corr, event)
            if slot.handle is not None:
                self.loop.fire(slot.handle)
            elif slot.future is not None and not slot.future.done():
                slot.future.set_result(None)
        elif isinstance(data, ev.HookReceived):
            self._slot(corr, event).hook._push(data.payload)  # type: ignore[union-attr]
        elif isinstance(data, ev.HookDisposed):
            held = self._slots.pop(corr, None)
            if held is not None and held.hook is not None:
                held.hook._released()
        self.loop.run_until_quiescent()
        self._check_main()

    def _slot(self, corr: str, event: Event) -> _Slot:
        slot = self._slots.get(corr)
        if slot is None:
            raise CorruptedLogError(
                f"event {event.event_id} ({event.event_type}) names {corr!r}, which no durable "
                "call of this run made"
            )
        return slot

    def _done(self, corr: str, event: Event) -> _Slot:
        """The slot of a call that has its result now: the program no longer keeps it."""
        slot = self._slot(corr, event)
        del self._slots[corr]
        return slot

    def _resolve_step(self, corr: str, event: Event, data: ev.StepCompleted) -> None:
        slot = self._done(corr, event)
        future = slot.future
        if future is None or future.done():
            return
        target = slot.step.signature.return_type if slot.step is not None else Any
        try:
            future.set_result(codec.decode(data.result, target, where=f"result of {slot.step!r}"))
        except SerializationError as error:
            future.set_exception(error)

    def _confirm(self, data: ev.EventData, corr: str) -> None:
        """The log records the call at ``data.position``: the code must have made it."""
        position: int = data.position  # type: ignore[union-attr]
        recorded, logged_text = logged(data)
        command = self._commands.pop(position, None)
        if command is None:
            if isinstance(data, ev.HookConflict) and position < self._next:
                return  # the store wrote it for a hook this program handed over already
            raise NonDeterminismError(position, logged_text, "no durable call at that position")
        if signature(command) != recorded:
            raise NonDeterminismError(position, logged_text, describe(command))
        self._unwritten.pop(position, None)
        current = command_id_of(command)
        if current != corr:  # recorded in an earlier generation: the log's id wins
            self._slots[corr] = self._slots.pop(current)

    def _start_main(self, event: Event) -> None:
        if self._main is not None:
            return
        self.started_at = event.created_at
        what = f"workflow {self.workflow.name!r}"
        try:
            args, kwargs = self.workflow.signature.decode(self.run.input, what)
        except SerializationError as error:
            self._outcome = Failed(error_info(error))
            return
        coro = self.workflow.fn(*args, **kwargs)
        self._main = self.loop.create_task(coro, name=f"workflow {self.run.run_id}")

    def _check_main(self) -> None:
        main = self._main
        if main is None or not main.done() or self._outcome is not None:
            return
        if main.cancelled():
            self._outcome = Failed(
                ErrorInfo(
                    message="the workflow task was cancelled",
                    type="CancelledError",
                    code=USER_ERROR,
                )
            )
        elif (error := main.exception()) is not None:
            self._outcome = Failed(error_info(error))
        else:
            try:
                self._outcome = Completed(
                    codec.encode(main.result(), where="the workflow's result")
                )
            except Exception as unencodable:  # the user's value: the user's error
                self._outcome = Failed(error_info(unencodable))
        leftover = self.loop.pending_tasks()
        if leftover:
            log.warning(
                "run %s finished with %d task(s) of its workflow still pending (work left "
                "unawaited is dropped)",
                self.run.run_id,
                len(leftover),
            )

    # -- what the actor takes -------------------------------------------------------------

    def take_commands(self) -> list[Command]:
        """The calls to write; once handed over the program keeps only their slots."""
        taken = [self._commands.pop(p) for p in self._unwritten]
        self._unwritten.clear()
        if self._effects is not None:
            taken += self._effects
            self._effects = None
        return taken

    def take_annotations(self) -> list[NewAnnotation]:
        notes, self._notes = self._notes, None
        return [] if notes is None else notes

    def take_outcome(self) -> Outcome | None:
        if self._outcome is None or self._reported:
            return None
        self._reported = True
        return self._outcome

    def close(self) -> None:
        """Drop the workflow's coroutines (their ``finally`` blocks cannot make durable calls)."""
        if self._closing:
            return
        self._closing = True
        tasks = self.loop.pending_tasks()
        previous = _get_running_loop()
        _set_running_loop(self.loop)
        try:
            for task in tasks:
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                with contextlib.suppress(BaseException):  # dropped code may raise anything
                    task.get_coro().close()
        finally:
            _set_running_loop(previous)
        self.loop.close()
        self._slots.clear()
        self._commands.clear()
        self._main = None

    # -- durable calls (called from workflow code) ------------------------------------------

    @property
    def next_position(self) -> int:
        """The position the next durable call will take."""
        return self._next

    def _position(self) -> int:
        if self._closing:
            raise Evicted()
        position = self._next
        self._next += 1
        return position

    def _issue(self, command: Command, corr: str, slot: _Slot) -> None:
        position: int = command.position  # type: ignore[union-attr]
        self._commands[position] = command
        self._unwritten[position] = None
        self._slots[corr] = slot

    def call_step(
        self, step: StepFunction[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        data = step.signature.encode(args, kwargs, f"step {step.name!r}")
        position = self._position()
        step_id = command_id(STEP, self.run.run_id, self.run.created_at, self.generation, position)
        future = self.loop.create_future()
        self._issue(StartStep(position, step_id, step.name, data), step_id, _Slot(future, step))
        return _result_of(future)

    def sleep_until(self, resume_at: datetime) -> Coroutine[Any, Any, Any]:
        position = self._position()
        wait_id = command_id(WAIT, self.run.run_id, self.run.created_at, self.generation, position)
        future = self.loop.create_future()
        self._issue(StartWait(position, wait_id, resume_at), wait_id, _Slot(future))
        return _result_of(future)

    def loop_timer(self, handle: asyncio.TimerHandle) -> None:
        """An ``asyncio.sleep`` (or timeout) of workflow code, as a durable wait (``LoopOwner``)."""
        position = self._position()
        wait_id = command_id(WAIT, self.run.run_id, self.run.created_at, self.generation, position)
        resume_at = datetime.fromtimestamp(handle.when(), tz=UTC)
        self._issue(StartWait(position, wait_id, resume_at), wait_id, _Slot(handle=handle))

    def create_hook(self, token: str | None, metadata: Any) -> WorkflowHook:
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError(f"a hook token must be a non-empty string, got {token!r}")
        encoded = None if metadata is None else codec.encode(metadata, where="hook metadata")
        position = self._position()
        hook_id = command_id(HOOK, self.run.run_id, self.run.created_at, self.generation, position)
        token = token or self._default_token(hook_id)
        hook = WorkflowHook(self, hook_id, token, metadata)
        self._issue(CreateHook(position, hook_id, token, encoded), hook_id, _Slot(hook=hook))
        return hook

    def _default_token(self, hook_id: str) -> str:
        """A token nobody can compute without the run's secret seed: 130 bits of
        HMAC-SHA256(seed, hook id). Runs made before runs had a seed keep the token their
        log recorded (drawn from the run's generator), so their replays agree."""
        seed = self.run.seed
        if seed is None:
            return "".join(self.rng.choice(_TOKEN_CHARS) for _ in range(24))
        digest = hmac.new(seed, hook_id.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().lower()[:26]

    def dispose_hook(self, hook: WorkflowHook) -> None:
        if not self._closing:
            if self._effects is None:
                self._effects = []
            self._effects.append(DisposeHook(hook.hook_id))

    def annotate(self, rows: list[NewAnnotation]) -> None:
        """Record annotations made by workflow code, keyed so a replay writes them once."""
        if self._closing:
            raise Evicted()
        for row in rows:
            self._note_seq += 1
            key = row.idempotency_key or f"actorflow.workflow:{self.generation}:{self._note_seq}"
            if self._notes is None:
                self._notes = []
            self._notes.append(
                NewAnnotation(
                    key=row.key,
                    value=row.value,
                    scope="run",
                    attempt=self.generation,
                    actor_kind=row.actor_kind,
                    actor_id=row.actor_id,
                    actor_version=row.actor_version,
                    payload=row.payload,
                    idempotency_key=key,
                    emit_event=row.emit_event,
                )
            )

    def hook_conflict(self, token: str, run_id: str) -> HookConflictError:
        return HookConflictError(token, run_id)

    def child_id(self, position: int) -> str:
        return command_id(CHILD, self.run.run_id, self.run.created_at, self.generation, position)


_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
"""The alphabet of tokens of runs made before runs had a secret seed."""
