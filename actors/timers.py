"""Timers: deliver a message to a run at a time (durable sleeps, step retry delays).

Timers live on the runtime's clock (``actors.clock``: the loop's ``call_later``, or a test's
virtual clock); what they stand for is durable in the store (``wait_created``,
``step_retrying``), so a process that restarts arms them again from the runs it loads. A
timer's callback only queues its message: :meth:`Timers.run`, a task of the runtime, delivers
the queue (delivering may start an actor, which a plain callback of the loop cannot). Timers
due at the same moment are delivered in the same turn of the loop, so the events they cause
share one commit (on a store that gathers writes: not the memory store, which never waits).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from datetime import datetime

from .clock import SYSTEM_CLOCK, Cancellable, Clock


class Timers:
    """One per runtime. Keys are unique per run: arming an armed key does nothing.

    The timers wait in one heap under a single callback of the clock, armed for the earliest:
    a sleeping run's timer is a heap entry, not a loop handle of its own. Disarming forgets
    the key at once and leaves its heap entry to be dropped when it comes up (or when stale
    entries outnumber live ones).
    """

    def __init__(
        self, deliver: Callable[[str, object], object], clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._deliver = deliver
        self._clock = clock
        self._armed: dict[str, dict[str, tuple[int, object]]] = {}
        """Run id -> key -> (the sequence number of its heap entry, the message)."""
        self._heap: list[tuple[datetime, int, str, str]] = []  # (at, seq, run_id, key)
        self._seq = itertools.count()
        self._count = 0  # timers armed
        self._next: Cancellable | None = None
        self._next_at: datetime | None = None
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
        return self._count

    def arm(self, run_id: str, key: str, at: datetime, message: object) -> None:
        """Deliver ``message`` to ``run_id`` at ``at`` (at once if it is past)."""
        if self._closed:
            return
        keys = self._armed.setdefault(run_id, {})
        if key in keys:
            return
        seq = next(self._seq)
        keys[key] = (seq, message)
        self._count += 1
        heapq.heappush(self._heap, (at, seq, run_id, key))
        if self._next_at is None or at < self._next_at:
            self._schedule()

    def queued(self) -> int:
        """How many fired timers wait for their message to be delivered."""
        return len(self._due)

    def armed(self, run_id: str, key: str) -> bool:
        return key in self._armed.get(run_id, {})

    def disarm(self, run_id: str, key: str) -> None:
        keys = self._armed.get(run_id)
        if keys is not None and keys.pop(key, None) is not None:
            self._count -= 1
            if not keys:
                del self._armed[run_id]
            self._compact()

    def disarm_run(self, run_id: str) -> None:
        """Cancel every timer of a run (it ended)."""
        self._count -= len(self._armed.pop(run_id, {}))
        self._compact()

    def close(self) -> None:
        """Cancel every timer; nothing more is delivered."""
        self._closed = True
        self._wake.set()
        if self._next is not None:
            self._next.cancel()
        self._next = self._next_at = None
        self._armed.clear()
        self._heap.clear()
        self._count = 0
        self._due.clear()

    def _live(self, entry: tuple[datetime, int, str, str]) -> bool:
        _, seq, run_id, key = entry
        held = self._armed.get(run_id, {}).get(key)
        return held is not None and held[0] == seq

    def _schedule(self) -> None:
        """Arm the clock's one callback for the earliest live timer (none if there is none)."""
        if self._next is not None:
            self._next.cancel()
        self._next = self._next_at = None
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        if heap and not self._closed:
            self._next_at = heap[0][0]
            self._next = self._clock.call_at(self._next_at, self._fire_due)

    def _fire_due(self) -> None:
        """The clock's callback: queue every timer due by now, earliest first; re-arm."""
        self._next = self._next_at = None
        now, heap = self._clock.now(), self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue  # disarmed, or armed again since
            _, _, run_id, key = entry
            keys = self._armed[run_id]
            _, message = keys.pop(key)
            if not keys:
                del self._armed[run_id]
            self._count -= 1
            self._due.append((run_id, message))
        if self._due:
            self._wake.set()
        self._schedule()

    def _compact(self) -> None:
        """Rebuild the heap when disarmed entries outnumber the armed ones."""
        if len(self._heap) > 64 and len(self._heap) > 2 * self._count:
            self._heap = [entry for entry in self._heap if self._live(entry)]
            heapq.heapify(self._heap)
