"""A virtual clock: time moves only when a test moves it.

It implements ``actors.clock.Clock``. Timers armed for a time not yet reached wait in a heap
until :meth:`VirtualClock.move_to` reaches them; a timer armed for a time already passed is
called soon on the running loop, as a real timer would be.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime


class _Timer:
    """One callback of the virtual clock (``cancel()`` it like an asyncio handle)."""

    __slots__ = ("at", "callback", "cancelled", "handle", "seq")

    def __init__(self, at: datetime, seq: int, callback: Callable[[], object]) -> None:
        self.at = at
        self.seq = seq
        self.callback = callback
        self.cancelled = False
        self.handle: asyncio.Handle | None = None

    def __lt__(self, other: _Timer) -> bool:
        return (self.at, self.seq) < (other.at, other.seq)

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()

    def fire(self) -> None:
        if not self.cancelled:
            self.cancelled = True  # once
            self.callback()


class VirtualClock:
    """A clock that starts at ``start`` (default: now, UTC) and stands still until moved."""

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError(f"start={start!r} has no time zone; use an aware datetime (UTC)")
        self._now = (start or datetime.now(UTC)).astimezone(UTC)
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        """The virtual time."""
        return self._now

    def call_at(self, at: datetime, callback: Callable[[], object]) -> _Timer:
        """Call ``callback`` once the clock reaches ``at`` (soon, if it has)."""
        timer = _Timer(at, next(self._seq), callback)
        if at <= self._now:
            timer.handle = asyncio.get_running_loop().call_soon(timer.fire)
        else:
            heapq.heappush(self._timers, timer)
        return timer

    def next_due(self) -> datetime | None:
        """The time of the earliest timer still armed, or None."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].at if self._timers else None

    def move_to(self, at: datetime) -> int:
        """Set the time to ``at`` and call the timers due by then, earliest first; how many."""
        if at < self._now:
            raise ValueError(f"the clock cannot go back from {self._now} to {at}")
        self._now = at
        fired = 0
        while self._timers and self._timers[0].at <= at:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.fire()
                fired += 1
        return fired
