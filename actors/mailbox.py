"""An actor's mailbox: an unbounded queue with one reader, that costs nothing while it waits.

A run that sleeps for a day keeps its actor, so its mailbox is much of what an idle run
costs: no list (one is made by the first message and dropped once taken), task, future or
coroutine. An actor with nothing to do parks: its task ends and its mailbox holds a *waker*,
told once when the next message is put (its system then starts a task for the actor again).
Putting a message never blocks; closing makes further puts fail.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

M = TypeVar("M")


class Waker(Protocol):
    """What a parked actor's mailbox tells when a message arrives."""

    def wake(self) -> None:
        """A message was put: run the actor again (called once per park)."""


class Mailbox(Generic[M]):
    """Messages put by anyone on the loop, taken in order by one reader."""

    __slots__ = ("_items", "closed", "waker")

    def __init__(self) -> None:
        self._items: list[M] | None = None  # None while empty: one object less per idle run
        self.waker: Waker | None = None
        """Set while the reader is parked; told (and cleared) by the next put."""
        self.closed = False

    def __len__(self) -> int:
        items = self._items
        return 0 if items is None else len(items)

    def put(self, message: M) -> bool:
        """Add ``message``; False (and nothing added) once the mailbox is closed."""
        if self.closed:
            return False
        items = self._items
        if items is None:
            self._items = [message]
        else:
            items.append(message)
        waker = self.waker
        if waker is not None:
            self.waker = None
            waker.wake()
        return True

    def take_all(self) -> list[M]:
        """Every message waiting, oldest first (an empty list if none)."""
        items, self._items = self._items, None
        return [] if items is None else items

    def close(self) -> None:
        """Refuse further messages (those already put can still be taken)."""
        self.closed = True
        self.waker = None
