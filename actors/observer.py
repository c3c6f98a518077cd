"""What the run actors report to telemetry: segments of a run, and the events they commit.

A *segment* is the stretch during which one actor holds a run: from taking it (start,
recovery, waking from passivation) until it ends, is passivated or is stopped. Replayed
history is never reported as new events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from persistence import Event, Run


class RunObserver(Protocol):
    """Receives the life of run segments (implemented by ``runtime`` for OpenTelemetry)."""

    def segment_started(self, run: Run, resumed: bool) -> None:
        """An actor took the run; ``resumed`` if the run had started before."""

    def committed(self, run: Run, events: Sequence[Event]) -> None:
        """The actor committed (or learnt of) these new events of the run."""

    def segment_ended(self, run: Run | None, reason: str) -> None:
        """The segment ended: ``completed``, ``failed``, ``cancelled``, ``passivated``,
        ``stopped`` (the runtime left) or ``abandoned`` (the run could not be taken)."""
