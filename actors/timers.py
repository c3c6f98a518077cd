"""Timers: deliver a message to a run at a time (durable sleeps, step retry delays).

Timers live on the runtime's clock (``actors.clock``: the loop's ``call_later``, or a test's
virtual clock); what they stand for is durable in the store (``wait_created``,
``step_retrying``), so a process that restarts arms them again from the runs it loads. A
timer's callback only queues its message: :meth:`Timers.run`, a task of the runtime, delivers
the queue (delivering may start an actor, which a plain callback of the loop cannot). Timers
due at the same moment are delivered in the same turn of the loop, so the events they cause
share one commit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime
from functools import partial

from .clock import SYSTEM_CLOCK, Cancellable, Clock


class Timers:
    """One per runtime. Keys are unique per run: arming an armed key does nothing."""

    def __init__(
        self, deliver: Callable[[str, object], object], clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._deliver = deliver
        self._clock = clock
        self._handles: dict[str, dict[str, Cancellable]] = {}
        self._due: deque[tuple[str, object]] = deque()
        self._wake = asyncio.Event()
        self._closed = False

    async def run(self) -> None:
        """Deliver the messages of timers that fired; run it in the runtime's task group."""
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._due and not self._closed:
                run_id, message = self._due.popleft()
                self._deliver(run_id, message)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._handles.values())

    def arm(self, run_id: str, key: str, at: datetime, message: object) -> None:
        """Deliver ``message`` to ``run_id`` at ``at`` (at once if it is past)."""
        keys = self._handles.setdefault(run_id, {})
        if key in keys:
            return
        keys[key] = self._clock.call_at(at, partial(self._fire, run_id, key, message))

    def queued(self) -> int:
        """How many fired timers wait for their message to be delivered."""
        return len(self._due)

    def armed(self, run_id: str, key: str) -> bool:
        return key in self._handles.get(run_id, {})

    def disarm(self, run_id: str, key: str) -> None:
        handle = self._handles.get(run_id, {}).pop(key, None)
        if handle is not None:
            handle.cancel()

    def disarm_run(self, run_id: str) -> None:
        """Cancel every timer of a run (it ended)."""
        for handle in self._handles.pop(run_id, {}).values():
            handle.cancel()

    def close(self) -> None:
        """Cancel every timer; nothing more is delivered."""
        self._closed = True
        self._wake.set()
        for keys in self._handles.values():
            for handle in keys.values():
                handle.cancel()
        self._handles.clear()
        self._due.clear()

    def _fire(self, run_id: str, key: str, message: object) -> None:
        keys = self._handles.get(run_id)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._handles[run_id]
        self._due.append((run_id, message))
        self._wake.set()
