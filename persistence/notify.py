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
    """Versioned topics with waiters; used by every store for in-process wake-ups.

    A topic's version is the sequence number of its last notification, drawn from one
    counter for all topics, so a version is never repeated. That lets the notifier forget
    topics nobody waits on (one or two per run would otherwise pile up forever): a forgotten
    topic reads as the *floor*, a sequence number moved past every forgotten version, so a
    waiter that read a version before the forgetting sees a change and re-checks (a spurious
    wake-up, never a lost one).
    """

    _PRUNE_ABOVE = 1024
    """Forget idle topics once more than this many (plus those with waiters) are kept."""

    def __init__(self) -> None:
        self._seq = 0
        self._floor = 0  # the version of every topic not in _versions
        self._versions: dict[str, int] = {}
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}

    def __len__(self) -> int:
        """How many topics the notifier holds (versions or waiters)."""
        return len(self._versions.keys() | self._waiters.keys())

    def version(self, topic: str) -> int:
        """An opaque value that changes whenever ``topic`` is notified."""
        return self._versions.get(topic, self._floor)

    def notify(self, topics: Iterable[str]) -> None:
        """Advance each topic and wake its waiters (call on the store's event loop)."""
        for topic in topics:
            self._seq += 1
            self._versions[topic] = self._seq
            for waiter in self._waiters.pop(topic, ()):
                if not waiter.done():
                    waiter.set_result(True)
        if len(self._versions) > self._PRUNE_ABOVE + len(self._waiters):
            self._prune()

    def notify_all(self) -> None:
        """Advance every topic (when a change cannot be attributed) and wake every waiter."""
        self._seq += 1
        self._floor = self._seq
        self._versions.clear()
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for waiter in futures:
                if not waiter.done():
                    waiter.set_result(True)

    def _prune(self) -> None:
        """Forget the topics nobody waits on; move the floor so no reader misses a change."""
        self._seq += 1
        self._floor = self._seq
        self._versions = {t: v for t, v in self._versions.items() if t in self._waiters}

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
notifications) or another runtime sharing this store object (memory: only commits holding an
event of :data:`INPUT_TYPES`, the only ones another runtime's log watcher reads)."""

INPUT_TYPES: frozenset[str] = frozenset(
    {"run_created", "run_cancelled", "run_rerun", "hook_received", "wait_completed"}
)
"""The event types a writer may append to a run that another worker executes."""
