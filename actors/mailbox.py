"""An actor's mailbox: an unbounded queue with one reader, cheap to hold while it waits.

A run that sleeps for a day keeps its actor, so its mailbox is what an idle run costs: a
list and, while the actor waits, one future. Putting a message never blocks and wakes the
reader at most once per wait; closing makes further puts fail and wakes the reader, which
still takes what was put before the close.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

M = TypeVar("M")


class Mailbox(Generic[M]):
    """Messages put by anyone on the loop, taken in order by one reader."""

    __slots__ = ("_items", "_waiter", "closed")

    def __init__(self) -> None:
        self._items: list[M] = []
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: M) -> bool:
        """Add ``message``; False (and nothing added) once the mailbox is closed."""
        if self.closed:
            return False
        self._items.append(message)
        self._wake()
        return True

    def take_all(self) -> list[M]:
        """Every message waiting, oldest first (an empty list if none)."""
        items, self._items = self._items, []
        return items

    async def wait(self) -> bool:
        """Until a message is waiting (True) or the mailbox is closed and empty (False)."""
        while not self._items:
            if self.closed:
                return False
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return True

    def close(self) -> None:
        """Refuse further messages; a waiting reader wakes."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
