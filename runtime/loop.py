"""The deterministic event loop on which a run's workflow code executes.

Each run gets a :class:`WorkflowLoop`. Its ready queue is a plain FIFO that the run actor
drains synchronously (:meth:`run_until_quiescent`), with this loop set as the running loop,
so ``asyncio.gather``, ``asyncio.wait``, ``asyncio.TaskGroup`` and friends work unchanged and
callbacks always run in the same order. ``time()`` is the workflow clock; ``call_at`` and
``call_later`` (used by ``asyncio.sleep`` and ``asyncio.timeout``) become durable timers
through the owner's ``on_timer``. Everything that would touch the real world (threads,
sockets, subprocesses, executors) raises :class:`WorkflowIOError`: do that in a step.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from typing import Any, Protocol

from .errors import WorkflowIOError

log = logging.getLogger("actorflow.workflow")

_set_running_loop = asyncio.events._set_running_loop
_get_running_loop = asyncio.events._get_running_loop


class LoopOwner(Protocol):
    """What a workflow loop asks of the program it runs (called, not stored as bound methods:
    a live run keeps its loop, and every object it holds is one more for the collector)."""

    def loop_time(self) -> float:
        """The workflow clock, in seconds since the epoch."""

    def loop_timer(self, handle: asyncio.TimerHandle) -> None:
        """Make ``call_at``'s timer durable; :meth:`WorkflowLoop.fire` runs it when due."""


_NO_ERRORS: list[dict[str, Any]] = []


class WorkflowLoop(asyncio.AbstractEventLoop):
    """A minimal event loop, stepped by its run actor; see the module docstring."""

    def __init__(self, owner: LoopOwner) -> None:
        self._ready: list[asyncio.Handle] = []  # a deque costs 600 bytes more
        self.owner = owner
        self._closed = False
        self._running = False
        self.errors: list[dict[str, Any]] = _NO_ERRORS
        """Contexts the default exception handler saw (a shared empty list until one)."""
        self._exception_handler: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pruned = 0  # how many tasks were kept at the last pruning

    # -- stepping ---------------------------------------------------------------------------

    def run_until_quiescent(self) -> None:
        """Run ready callbacks, in order, until none is left."""
        previous = _get_running_loop()
        _set_running_loop(self)
        self._running = True
        ready = self._ready
        try:
            while ready:
                handle = ready.pop(0)
                if not handle._cancelled:
                    handle._run()
        finally:
            self._running = False
            _set_running_loop(previous)

    def fire(self, handle: asyncio.TimerHandle) -> None:
        """A durable timer of ``call_at`` elapsed: queue its callback unless cancelled."""
        if not handle.cancelled():
            timer: Any = handle
            self._ready.append(asyncio.Handle(timer._callback, timer._args, self, timer._context))

    # -- what asyncio's futures and tasks use ------------------------------------------------

    def time(self) -> float:
        return self.owner.loop_time()

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        handle._scheduled = True  # type: ignore[attr-defined]
        self.owner.loop_timer(handle)
        return handle

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self.time() + max(0.0, delay), callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """A cancelled durable timer stays in the log; firing it later does nothing."""

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Any,
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=self, name=name, context=context)
        tasks = self._tasks
        tasks.add(task)
        if len(tasks) > 2 * self._pruned + 8:  # forget ended tasks now and then, not by a
            tasks.difference_update([t for t in tasks if t.done()])  # callback per task
            self._pruned = len(tasks)
        return task

    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks of this loop not done yet (``asyncio.all_tasks`` scans every loop)."""
        return [task for task in self._tasks if not task.done()]

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        return None

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()
        self._tasks.clear()

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        if self.errors is _NO_ERRORS:
            self.errors = []
        self.errors.append(context)
        log.warning("workflow loop: %s", context.get("message"), exc_info=context.get("exception"))

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is not None:
            self._exception_handler(self, context)
        else:
            self.default_exception_handler(context)

    # -- everything else is I/O --------------------------------------------------------------

    def _refuse(self, what: str) -> WorkflowIOError:
        return WorkflowIOError(
            f"workflow code cannot use {what}: it must be deterministic; do I/O, threads and "
            "real timers inside a @step"
        )

    def call_soon_threadsafe(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise self._refuse("call_soon_threadsafe (threads)")

    def run_in_executor(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise self._refuse("run_in_executor (threads)")

    def run_forever(self) -> None:
        raise self._refuse("run_forever")

    def run_until_complete(self, future: Any) -> Any:
        raise self._refuse("run_until_complete")

    def stop(self) -> None:
        raise self._refuse("stop")


def _refusing(name: str) -> Callable[..., Any]:
    def method(self: WorkflowLoop, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse(name)

    method.__name__ = name
    return method


for _name in (
    "create_connection",
    "create_server",
    "create_unix_connection",
    "create_unix_server",
    "create_datagram_endpoint",
    "connect_read_pipe",
    "connect_write_pipe",
    "subprocess_exec",
    "subprocess_shell",
    "add_reader",
    "remove_reader",
    "add_writer",
    "remove_writer",
    "sock_recv",
    "sock_recv_into",
    "sock_sendall",
    "sock_connect",
    "sock_accept",
    "sock_sendfile",
    "sendfile",
    "start_tls",
    "getaddrinfo",
    "getnameinfo",
    "add_signal_handler",
    "remove_signal_handler",
    "shutdown_asyncgens",
    "shutdown_default_executor",
    "set_default_executor",
):
    setattr(WorkflowLoop, _name, _refusing(_name))
