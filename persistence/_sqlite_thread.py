"""The SQLite store's threads: one connection each, jobs run in order (``writer=thread``).

A :class:`ThreadWorker` owns one connection on a thread of its own. Coroutines hand it a job
and await a future that the thread resolves on their event loop with
``call_soon_threadsafe`` (the commit's notifications first, see
:func:`persistence._sqlite_inline.settle`), so the loop never waits on SQLite. The store has
a writer and a reader; the writer commits the calls of a job with a grouped form queued
together at once (stream appends).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, TypeVarTuple

from ._sqlite_inline import mapped, settle
from .notify import Notifier

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_Job = tuple[
    Callable[..., Any] | None,
    tuple[Any, ...],
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    bool,
]


Grouped = Callable[[sqlite3.Connection, list[Any]], list[Any]]
"""A job that runs several calls of one job in one transaction: per call its ``(result,
topics)`` or the error that refused it alone (see ``_sqlite_jobs.append_chunk_groups``)."""


class ThreadWorker:
    """A thread that owns one SQLite connection and runs jobs on it, one at a time, in order.

    A job with a grouped form (``groups``) that finds more calls of itself queued right
    behind it runs them all in that form: one transaction, one commit, for what would have
    been several."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        notifier: Notifier,
        map_error: Callable[[sqlite3.Error], BaseException],
        groups: dict[Callable[..., Any], Grouped] | None = None,
    ) -> None:
        self._connect = connect
        self._notifier = notifier
        self._map_error = map_error
        self._groups = groups or {}
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.running = False

    async def start(self) -> None:
        """Start the thread and open its connection; raise (and end the thread) if it fails."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._jobs.put((None, (), loop, ready, False))
        self.running = True  # until the thread says otherwise: stop() must reach it
        self._thread.start()
        await ready

    def call(self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> asyncio.Future[T]:
        """Run ``fn(connection, *args)`` on the thread; the future resolves on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, loop, future, False))
        return future

    def write(
        self,
        fn: Callable[[sqlite3.Connection, *Ts], tuple[T, Sequence[str]]],
        *args: *Ts,
    ) -> asyncio.Future[T]:
        """Like :meth:`call` for a job returning ``(result, topics)``: topics are notified."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, loop, future, True))
        return future

    async def stop(self) -> None:
        """Finish the queued jobs, close the connection and end the thread (if it runs)."""
        if not self.running:
            return
        self.running = False
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._jobs.put((None, (), loop, done, False))
        await done
        self._thread.join()

    def _run(self) -> None:
        fn, _, loop, future, _ = self._jobs.get()
        try:
            conn = self._connect()
        except BaseException as exc:
            self.running = False
            self._post(loop, future, None, self._mapped(exc), ())
            return
        self._post(loop, future, None, None, ())
        try:
            carried: _Job | None = None
            while True:
                job = carried or self._jobs.get()
                fn, args, loop, future, notify = job
                if fn is None:
                    break
                grouped = self._groups.get(fn)
                if grouped is not None:
                    group, carried = self._queued_behind(job)
                    if len(group) > 1:
                        self._run_group(conn, grouped, group)
                        continue
                else:
                    carried = None
                topics: Sequence[str] = ()
                error: BaseException | None = None
                result: Any = None
                try:
                    result = fn(conn, *args)
                    if notify:
                        result, topics = result
                except BaseException as exc:
                    error = self._mapped(exc)
                self._post(loop, future, result, error, topics)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._post(loop, future, None, None, ())

    def _queued_behind(self, first: _Job) -> tuple[list[_Job], _Job | None]:
        """``first`` and the calls of its job queued right behind it; the next other job
        (taken from the queue already: it runs next), if any."""
        group = [first]
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return group, None
            if job[0] is not first[0]:
                return group, job
            group.append(job)

    def _run_group(self, conn: sqlite3.Connection, grouped: Grouped, group: list[_Job]) -> None:
        """Run ``group`` (calls of one job) in its grouped form and answer each caller."""
        try:
            outcomes = grouped(conn, [args for _, args, _, _, _ in group])
        except BaseException as exc:  # nothing was written: every caller is told why
            for _, _, loop, future, _ in group:
                self._post(loop, future, None, self._mapped(exc), ())
            return
        for (_, _, loop, future, _), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._post(loop, future, None, outcome, ())
            else:
                result, topics = outcome
                self._post(loop, future, result, None, topics)

    def _mapped(self, exc: BaseException) -> BaseException:
        return mapped(exc, self._map_error)

    def _post(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        result: Any,
        error: BaseException | None,
        topics: Sequence[str],
    ) -> None:
        with contextlib.suppress(RuntimeError):  # the loop was closed: nobody is waiting
            loop.call_soon_threadsafe(settle, future, result, error, self._notifier, topics)
