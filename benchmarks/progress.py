"""Progress on stderr, so stdout stays a paste-ready report: lines stamped with the time
elapsed since the harness started, and a count of the suite-and-store units done."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

STARTED = time.monotonic()


def clock_text(seconds: float) -> str:
    """``0:07``, ``12:34`` or ``1:02:03``: minutes and seconds (hours when there are any)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def say(message: str) -> None:
    """Print one ``[bench m:ss]`` progress line to stderr (time since the harness started)."""
    print(
        f"[bench {clock_text(time.monotonic() - STARTED)}] {message}", file=sys.stderr, flush=True
    )


class Progress:
    """Counts units of work (a suite on one store) and says which one runs, of how many."""

    def __init__(
        self,
        total: int,
        tell: Callable[[str], None] = say,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self._tell = tell
        self._clock = clock
        self._started = clock()

    def begin(self, what: str) -> None:
        """Say that ``what`` starts, and how many units are done."""
        self._tell(f"{self.done}/{self.total} done; now: {what}")

    def end(self) -> None:
        """Count one unit done."""
        self.done += 1

    def finish(self) -> None:
        """Say that every unit is done, and how long they took."""
        elapsed = clock_text(self._clock() - self._started)
        self._tell(f"{self.done}/{self.total} done in {elapsed}")
