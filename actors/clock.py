"""The clock a runtime reads: what time it is, and calling back at a time.

Everything that makes a run's time (the ``created_at`` of its events, which is its workflow
clock, the ``resume_at`` of its sleeps, the ``retry_after`` of a step) and every durable timer
goes through one :class:`Clock`. The runtime uses :data:`SYSTEM_CLOCK`; tests give a virtual
one (``runtime.testing``) so that a sleep of a week is due after a call, not after a week.
Leases, backoffs and timeouts stay on real time: they are about processes, not runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Protocol


class Cancellable(Protocol):
    """A callback scheduled by a clock."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The time of runs and their timers."""

    def now(self) -> datetime:
        """The current time, an aware UTC datetime."""
        ...

    def call_at(self, at: datetime, callback: Callable[[], object]) -> Cancellable:
        """Call ``callback`` on the running loop at ``at`` (soon if it is past)."""
        ...


class SystemClock:
    """The wall clock and the running loop's timers."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, at: datetime, callback: Callable[[], object]) -> Cancellable:
        delay = max(0.0, (at - self.now()).total_seconds())
        return asyncio.get_running_loop().call_later(delay, callback)


SYSTEM_CLOCK: Final[Clock] = SystemClock()
"""The clock of every runtime that is not given another."""
