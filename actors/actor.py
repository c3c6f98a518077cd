"""The actor primitive: a mailbox, one message at a time, spawned and supervised by a system.

An actor's mailbox (:class:`~actors.mailbox.Mailbox`) is an unbounded queue; the actor's task
takes every message waiting (so a busy actor handles a burst as one batch) and hands them to
``handle``. An actor runs in a plain asyncio task only while it has messages: when none is
left it *parks* (its task ends; the actor object and its mailbox stay) and the next message
starts a new task, in the context copied when the actor was spawned. A run that sleeps for a
day keeps its actor, so a parked actor costs no task, coroutine or future. While any actor
lives the system holds one keeper task in its task group, which, when that group is
cancelled, stops every actor (parked ones too) and waits for them: none outlives the group.

Supervision: if ``handle`` raises, the system waits (a capped exponential backoff), makes a
fresh actor with the actor's factory and carries on with the same mailbox, redelivering the
messages in hand. An actor that crashes more than ``max_restarts`` times within ``window``
seconds is given up: the system calls its ``give_up`` with the error and removes it. An actor
stops itself by returning :data:`STOP` from ``handle``; the system removes it only if no
message is waiting, so a message sent during that decision is never lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from .mailbox import Mailbox

log = logging.getLogger("actorflow.actors")

M = TypeVar("M")


class _Stop:
    def __repr__(self) -> str:
        return "STOP"


STOP: Final = _Stop()
"""Returned by ``Actor.handle`` to stop (passivate) the actor once its mailbox is empty."""


class Actor(Generic[M]):
    """Base class of actors. Override ``handle``; the others are optional."""

    __slots__ = ()

    async def started(self) -> _Stop | None:
        """Called once before the first message; return STOP to stop if none is waiting."""
        return None

    async def handle(self, messages: Sequence[M]) -> _Stop | None:
        """Handle the messages that were waiting, in order; return STOP to stop."""
        raise NotImplementedError

    async def stopped(self) -> None:
        """Called after the actor stopped (by STOP, by its system, or after giving up)."""

    async def give_up(self, error: BaseException, messages: Sequence[M]) -> None:
        """Called when the actor crashed more often than its system allows, with the
        messages it was handling (answer any requests among them)."""


class ActorRef(Generic[M]):
    """The address of a live actor: send it messages with :meth:`tell`."""

    __slots__ = ("_mailbox", "name")

    def __init__(self, name: str, mailbox: Mailbox[M]) -> None:
        self.name = name
        self._mailbox = mailbox

    def tell(self, message: M) -> bool:
        """Put ``message`` in the mailbox; False if the actor has stopped."""
        return self._mailbox.put(message)


class _Entry(Generic[M]):
    """One actor as its system keeps it, running or parked."""

    __slots__ = (
        "actor",
        "busy",
        "context",
        "crashes",
        "factory",
        "mailbox",
        "name",
        "ref",
        "running",
        "stopping",
        "system",
        "task",
    )

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        factory: Callable[[], Actor[M]],
        context: contextvars.Context,
    ) -> None:
        self.system = system
        self.name = name
        self.mailbox: Mailbox[M] = Mailbox()
        self.ref = ActorRef(name, self.mailbox)
        self.factory = factory
        self.context = context
        """Every task of the actor runs in this copy of its spawner's context (not in the
        context of whoever sent the message that woke it)."""
        self.actor: Actor[M] | None = None  # made by its first task, kept while it parks
        self.crashes: deque[float] | None = None  # monotonic times of recent crashes
        self.busy = False
        self.stopping = False
        self.running = False  # its task has begun (a task cancelled before that runs nothing)
        self.task: asyncio.Task[None] | None = None  # None while parked

    def wake(self) -> None:
        """A message reached the parked actor: give it a task again."""
        self.system._activate(self)


class ActorSystem:
    """Spawns, looks up, stops and supervises actors inside one task group."""

    def __init__(
        self,
        task_group: TaskGroup,
        max_restarts: int = 5,
        window: float = 60.0,
        backoff: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        self._tg = task_group
        self._max_restarts = max_restarts
        self._window = window
        self._backoff = backoff
        self._actors: dict[str, _Entry[object]] = {}
        self._moved = anyio.Event()  # set when an actor finished a batch or stopped
        self._tasks: set[asyncio.Task[None]] = set()
        self._keeper = False
        self._none_left: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._actors)

    def lookup(self, name: str) -> ActorRef[object] | None:
        """The live actor called ``name``, if any."""
        entry = self._actors.get(name)
        return entry.ref if entry is not None else None

    def spawn(self, name: str, factory: Callable[[], Actor[M]]) -> ActorRef[M]:
        """Start an actor made by ``factory`` under ``name`` (which must be free). Callable
        from a task or from a plain callback of the loop (a timer)."""
        if name in self._actors:
            raise ValueError(f"an actor named {name!r} is already running")
        if not self._keeper:
            self._tg.start_soon(self._keep, name="actor system")  # raises if the group ended
            self._keeper = True
            self._loop = asyncio.get_running_loop()
        entry = _Entry(self, name, factory, contextvars.copy_context())
        self._actors[name] = entry  # type: ignore[assignment]
        self._activate(entry)
        return entry.ref

    def stop(self, name: str) -> None:
        """Stop the actor ``name`` (its pending messages are dropped)."""
        entry = self._actors.get(name)
        if entry is not None:
            self._stop(entry)

    def stop_all(self) -> None:
        """Stop every actor."""
        for entry in list(self._actors.values()):
            self._stop(entry)

    def names(self) -> list[str]:
        """The names of the live actors."""
        return list(self._actors)

    def running(self) -> int:
        """How many actors have a task (the others are parked: no message waiting)."""
        return len(self._tasks)

    def idle(self) -> bool:
        """No actor is handling a message and no mailbox holds one."""
        return not any(e.busy or e.mailbox for e in self._actors.values())

    async def wait_idle(self) -> None:
        """Wait until :meth:`idle` (an actor that never gets there makes this wait on)."""
        while not self.idle():
            self._moved = anyio.Event()
            await self._moved.wait()

    def _activate(self, entry: _Entry[M]) -> None:
        """Give ``entry`` a task, on the system's loop (a message may be put while a run's
        workflow loop is the running one), in the actor's own context."""
        loop = self._loop
        assert loop is not None, "an actor is activated after its system spawned one"
        entry.mailbox.waker = None
        task = entry.task = loop.create_task(self._run(entry), context=entry.context)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks and not self._actors and self._none_left is not None:
            self._none_left.set()

    async def _keep(self) -> None:
        """Hold the task group while actors live (parked ones too); if it is cancelled, end
        them all first."""
        try:
            while self._tasks or self._actors:
                self._none_left = asyncio.Event()
                await self._none_left.wait()
        finally:
            self._keeper, self._none_left = False, None
            for entry in list(self._actors.values()):
                self._stop(entry)  # a parked actor is given a task to stop in
            tasks = list(self._tasks)
            if tasks:
                with anyio.CancelScope(shield=True):
                    await asyncio.wait(tasks)

    async def _run(self, entry: _Entry[M]) -> None:
        """One activation: handle messages until none is waiting (then park) or the actor
        stops; supervise it meanwhile."""
        actor = entry.actor
        carry: list[M] = []
        entry.running = True
        parked = False
        try:
            while True:
                try:
                    if actor is None:
                        actor = entry.actor = entry.factory()
                        if entry.stopping:  # stopped before its task began
                            return
                        if await actor.started() is STOP and not carry and not entry.mailbox:
                            return
                    elif entry.stopping:  # stopped while parked, or before this task began
                        return
                    parked = await self._handle(entry, actor, carry)
                    return
                except Exception as error:  # supervision: restart or give up
                    entry.busy = False
                    crashes = self._crashed(entry)
                    if crashes > self._max_restarts:
                        log.error(
                            "actor %s gave up after %d crashes in %.0f s",
                            entry.name,
                            crashes,
                            self._window,
                            exc_info=error,
                        )
                        if actor is not None:
                            await actor.give_up(error, carry)
                        return
                    base, cap = self._backoff
                    delay = min(cap, base * 2 ** (crashes - 1))
                    log.warning(
                        "actor %s crashed (%r); restarting in %.2f s",
                        entry.name,
                        error,
                        delay,
                        exc_info=error,
                    )
                    entry.actor = None
                    await anyio.sleep(delay)
                    actor = None  # a fresh actor takes the batch in hand
        finally:
            entry.running, entry.task = False, None
            self._moved.set()
            if parked and not entry.stopping:
                entry.mailbox.waker = entry  # told by the next message
            else:
                self._remove(entry)
                if actor is not None:
                    with anyio.CancelScope(shield=True):
                        await actor.stopped()

    def _remove(self, entry: _Entry[M]) -> None:
        if self._actors.get(entry.name) is entry:
            del self._actors[entry.name]
        entry.mailbox.close()
        entry.actor = None

    def _crashed(self, entry: _Entry[M]) -> int:
        """Note a crash; how many happened within the window."""
        now = time.monotonic()
        if entry.crashes is None:
            entry.crashes = deque()
        entry.crashes.append(now)
        while entry.crashes and entry.crashes[0] < now - self._window:
            entry.crashes.popleft()
        return len(entry.crashes)

    async def _handle(self, entry: _Entry[M], actor: Actor[M], carry: list[M]) -> bool:
        """Handle messages while any wait; True to park (none left), False if the actor
        stopped. ``carry`` holds the batch in hand, kept for a restart if it fails."""
        mailbox = entry.mailbox
        while True:
            if not carry:
                if not mailbox:
                    return True
                carry += mailbox.take_all()
            entry.busy = True
            result = await actor.handle(list(carry))
            entry.busy = False
            self._moved.set()
            carry.clear()
            if result is STOP and not mailbox:
                return False

    def _stop(self, entry: _Entry[M]) -> None:
        """Stop an actor: cancel its task; a parked actor gets a task that ends at once (as
        does one whose task has not begun: cancelled before its first step, it would skip
        the cleanup in ``_run``)."""
        if entry.stopping:
            return
        entry.stopping = True
        if entry.task is None:
            self._activate(entry)
        elif entry.running:
            entry.task.cancel()
