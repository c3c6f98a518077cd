"""The ``Run`` handle: a run's id and what a client may ask of it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from persistence import ErrorInfo, Event, RunStatus, codec
from persistence import Run as RunEntity
from persistence.notify import end_topic

from .errors import RunCancelledError, RunFailedError

LOCAL_POLL = 5.0
"""Seconds between re-checks of a run that runs in this process (its end, or its leaving
this process, is notified here: the re-check is a safety net)."""

if TYPE_CHECKING:
    from .runtime import Runtime


class RunInfo(msgspec.Struct, frozen=True):
    """A run as a client sees it."""

    run_id: str
    workflow_name: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error: ErrorInfo | None

    @classmethod
    def of(cls, run: RunEntity) -> RunInfo:
        return cls(
            run.run_id,
            run.workflow_name,
            run.status,
            run.created_at,
            run.started_at,
            run.completed_at,
            run.error,
        )


class HookInfo(msgspec.Struct, frozen=True):
    """A live hook, as ``Runtime.get_hook`` returns it."""

    hook_id: str
    run_id: str
    token: str
    metadata: Any
    created_at: datetime


class Run:
    """A handle on a run (made without I/O; methods read the store)."""

    def __init__(self, runtime: Runtime, run_id: str) -> None:
        self._runtime = runtime
        self._id = run_id

    @property
    def id(self) -> str:
        """The run's id."""
        return self._id

    def __repr__(self) -> str:
        return f"<Run {self._id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    async def status(self) -> RunStatus:
        """The run's status now; ``RunNotFoundError`` if there is no such run."""
        return (await self._runtime.store.get_run(self._id)).status

    async def info(self) -> RunInfo:
        """Workflow name, status, times and error of the run."""
        return RunInfo.of(await self._runtime.store.get_run(self._id))

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to end: its output, or ``RunFailedError`` / ``RunCancelledError``.

        Wakes on the run's end (in this process at once; from another process through the
        store's notifications, or a short poll on SQLite). ``TimeoutError`` after ``timeout``
        seconds; ``RunNotFoundError`` if there is no such run.
        """
        store = self._runtime.store
        topic = end_topic(self._id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seen = store.notifier.version(topic)
            run = await store.get_run(self._id)
            if run.status.terminal:
                return self._outcome(run)
            wait = self._runtime.poll_interval
            if self._runtime._executes(self._id):  # its end is notified here
                wait = max(wait, LOCAL_POLL)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"run {self._id!r} did not end within {timeout} s")
                wait = min(wait, left)
            await store.notifier.wait(topic, seen, wait)

    def _outcome(self, run: RunEntity) -> Any:
        if run.status is RunStatus.COMPLETED:
            target = self._runtime.return_type(run.workflow_name)
            return codec.decode(
                run.output or b"\xc0", target, where=f"the output of run {run.run_id!r}"
            )
        if run.status is RunStatus.CANCELLED:
            raise RunCancelledError(run.run_id)
        error = run.error or ErrorInfo(message="unknown error")
        raise RunFailedError(run.run_id, error.code or "USER_ERROR", error.message, error)

    async def cancel(self, reason: str | None = None, *, timeout: float | None = 30.0) -> None:
        """Cancel the run: ``run_cancelled`` is recorded and its running steps are cancelled.

        Cancelling a run that has already ended does nothing. ``StoreUnavailableError`` if
        the store could not record it within ``timeout`` seconds.
        """
        await self._runtime.cancel(self._id, reason, timeout=timeout)

    def stream(self, namespace: str | None = None, start_index: int = 0) -> AsyncIterator[Any]:
        """Every chunk of the stream from ``start_index`` (negative counts from the end),
        following the live tail until the stream is closed or the run ends."""
        from .streams import read_stream

        store = self._runtime.store
        return read_stream(
            store, self._id, namespace or "", start_index, self._runtime.poll_interval
        )

    async def stream_tail_index(self, namespace: str | None = None) -> int:
        """The index of the stream's last chunk (-1 if it has none)."""
        return (await self._runtime.store.stream_info(self._id, namespace or "")).tail_index

    async def events(self) -> list[Event]:
        """The run's events, in log order."""
        events: list[Event] = []
        after = None
        while True:
            page = await self._runtime.store.list_events(self._id, after=after, limit=1000)
            events.extend(page.items)
            if page.cursor is None:
                return events
            after = page.cursor
