"""In-process change notifications: wake whoever waits on a topic after a commit.

Topics are strings such as ``run:<run_id>`` (a run's log grew), ``stream:<run_id>:<name>``
(a stream got chunks) and ``events`` (anything was committed). A waiter reads the topic's
version first, checks its condition, then waits for the version to move, so a notification
between the check and the wait is never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping


class Notifier:
    """Versioned topics with waiters; used by every store for in-process wake-ups."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        self._epoch = 0  # moved by notify_all: every topic's version moves with it

    def version(self, topic: str) -> int:
        """The number of notifications ``topic`` has had (wake-ups of all topics included)."""
        return self._versions.get(topic, 0) + self._epoch

    def notify(self, topics: Iterable[str]) -> None:
        """Advance each topic and wake its waiters (call on the store's event loop)."""
        for topic in topics:
            self._versions[topic] = self._versions.get(topic, 0) + 1
            for waiter in self._waiters.pop(topic, ()):
                if not waiter.done():
                    waiter.set_result(True)

    def notify_all(self) -> None:
        """Advance every topic (when a change cannot be attributed) and wake every waiter."""
        self._epoch += 1
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for waiter in futures:
                if not waiter.done():
                    waiter.set_result(True)

    async def wait(self, topic: str, seen: int, timeout: float | None = None) -> bool:
        """Wait until ``topic`` moves past version ``seen``; False on timeout."""
        return await self.wait_any({topic: seen}, timeout)

    async def wait_any(self, seen: Mapping[str, int], timeout: float | None = None) -> bool:
        """Wait until any topic moves past its version in ``seen``; False on timeout."""
        if any(self.version(topic) != version for topic, version in seen.items()):
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        for topic in seen:
            self._waiters.setdefault(topic, []).append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, _time_out, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            for topic in seen:
                waiters = self._waiters.get(topic)
                if waiters and waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._waiters[topic]


def _time_out(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def end_topic(run_id: str) -> str:
    """Notified when a run reaches a terminal state."""
    return f"end:{run_id}"


def stream_topic(run_id: str, stream: str) -> str:
    return f"stream:{run_id}:{stream}"


EVENTS_TOPIC = "events"
"""Anything was committed (through this store object)."""

FOREIGN_TOPIC = "foreign"
"""Something may have been committed by another writer: another process (PostgreSQL
notifications) or another runtime sharing this store object (memory)."""
