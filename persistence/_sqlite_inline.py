"""The SQLite store's writer on the event loop's thread (``writer=loop``), and how a write's
caller is handed its result (both writers).

:class:`LoopWriter` runs each job the moment it is handed one, on the thread of the event loop
that hands it, on a connection opened there: no thread hand-off either way. A job is plain
synchronous code, so it runs whole before anything else on the loop runs, and jobs run one at
a time in the order they were handed over, like on the writer thread. The caller's future is
settled on the loop's next turn (the commit's notifications first), so a coroutine that writes
in a loop still lets the others run between its writes. The price: the loop does nothing else
while a transaction runs, its ``COMMIT`` and fsync included, and while ``busy_timeout`` waits
for another connection's write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, TypeVarTuple

from .errors import StoreUnavailableError
from .notify import Notifier

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def settle(
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
    notifier: Notifier,
    topics: Sequence[str],
) -> None:
    """On the loop: send the commit's notifications, then hand the caller its result."""
    if topics:
        notifier.notify(topics)
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def mapped(
    exc: BaseException, map_error: Callable[[sqlite3.Error], BaseException]
) -> BaseException:
    """What a job raised, as its caller gets it: a SQLite error as the store error it means
    (caused by it), anything else as it is."""
    if isinstance(exc, sqlite3.Error):
        error = map_error(exc)
        error.__cause__ = exc
        return error
    return exc


class LoopWriter:
    """Runs jobs on one SQLite connection on the event loop's thread, each whole, in order."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        notifier: Notifier,
        map_error: Callable[[sqlite3.Error], BaseException],
    ) -> None:
        self._connect = connect
        self._notifier = notifier
        self._map_error = map_error
        self._conn: sqlite3.Connection | None = None
        self.running = False

    async def start(self) -> None:
        """Open the connection on this thread; raise (the store's error) if it fails."""
        try:
            self._conn = self._connect()
        except BaseException as exc:
            raise self._mapped(exc) from exc
        self.running = True

    def call(self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> asyncio.Future[T]:
        """Run ``fn(connection, *args)`` now; the future resolves on this loop's next turn."""
        return self._run(fn, args, notify=False)

    def write(
        self,
        fn: Callable[[sqlite3.Connection, *Ts], tuple[T, Sequence[str]]],
        *args: *Ts,
    ) -> asyncio.Future[T]:
        """Like :meth:`call` for a job returning ``(result, topics)``: topics are notified."""
        return self._run(fn, args, notify=True)

    async def stop(self) -> None:
        """Close the connection (no job is ever left queued: each ran when it was handed)."""
        if not self.running:
            return
        self.running = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _run(
        self, fn: Callable[..., Any], args: tuple[Any, ...], *, notify: bool
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        topics: Sequence[str] = ()
        error: BaseException | None = None
        result: Any = None
        if self._conn is None:
            error = StoreUnavailableError("the SQLite writer is closed")
        else:
            try:
                result = fn(self._conn, *args)
                if notify:
                    result, topics = result
            except Exception as exc:  # what stops the process (KeyboardInterrupt) propagates
                error = self._mapped(exc)
        loop.call_soon(settle, future, result, error, self._notifier, topics)
        return future

    def _mapped(self, exc: BaseException) -> BaseException:
        return mapped(exc, self._map_error)
