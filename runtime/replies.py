"""The futures of callers waiting on run actors, so that every caller gets an answer.

A caller (``resume_hook``, ``cancel``, ``wake_up``, ``start``) sends its run's actor a
message with a future and awaits it. The actor answers once the event is stored. If the
runtime leaves first, whatever is still unanswered gets :class:`RuntimeClosedError`: no caller
ever waits on a runtime that has gone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import RuntimeClosedError


class Replies:
    """Every unanswered caller's future of one runtime."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._pending)

    def new(self) -> asyncio.Future[Any]:
        """A future for one call; ``RuntimeClosedError`` if the runtime is leaving."""
        if self.closed:
            raise RuntimeClosedError("the runtime is closing: it takes no new calls")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def close(self) -> None:
        """Take no more calls; answer every waiting one with ``RuntimeClosedError``."""
        self.closed = True
        for future in list(self._pending):
            if not future.done():
                future.set_exception(
                    RuntimeClosedError(
                        "the runtime closed before the call was answered; its outcome is "
                        "not known here (ask the store, or call again)"
                    )
                )
                future.exception()  # a caller that left is not reported as an unread error
        self._pending.clear()
