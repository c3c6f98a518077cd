"""The batcher: group commit of the events of all actors into one ``create_batch``.

While no batch is being written, what arrives is written on the next turn of the event loop
(everything submitted in the same turn shares that commit: no timer, no added latency when
idle). While a batch is being written, arriving requests queue and go together in the next
one. Each submitter gets back the outcomes of its own requests, in order.

A store whose writes never wait on I/O (``writes_inline``: the memory store) gains nothing
from batching, so while nothing is queued a submitter writes its requests itself, in its
own task: one hand-off to the batcher's task and back fewer per write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import anyio

from persistence import Event, Store
from persistence.batch import Request
from persistence.records import AnnotationRecord, BatchResult

Outcome = object
"""An accepted ``Event``, ``None`` (annotation-only request) or the refusing exception."""


class Share(NamedTuple):
    """A submitter's share of a batch: outcomes, inserted annotations, emitted events, and
    the leases its run creations took (the batch's: a submitter picks its runs')."""

    outcomes: list[Outcome]
    annotations: list[list[AnnotationRecord]]
    emitted: list[list[Event]]
    leases: dict[str, int]


class BatcherClosed(Exception):
    """The runtime is leaving: its batcher writes nothing more."""


@dataclass(slots=True)
class Submission:
    requests: Sequence[Request]
    future: asyncio.Future[Share]


class Batcher:
    """One per runtime: turns many actors' small writes into few transactions."""

    def __init__(
        self,
        store: Store,
        max_requests: int = 2000,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self._store = store
        self._max = max_requests
        self._queue: list[Submission] = []
        self._wake = asyncio.Event()
        self._observe = observe
        self._closed = False
        self._writing = False
        self._inline = bool(getattr(store, "writes_inline", False))

    @property
    def busy(self) -> bool:
        """Requests are queued or a batch is being written."""
        return bool(self._queue) or self._writing

    async def submit(self, requests: Sequence[Request]) -> Share:
        """Write ``requests`` in the next batch: their outcomes, inserted annotations and the
        ``annotation_created`` events written for them.

        Raises what the store raised if the whole batch failed (nothing was written).
        """
        if self._closed:
            raise BatcherClosed("the runtime is closed: nothing more is written")
        if self._inline and not self.busy:
            return await self._write_now(requests)
        future: asyncio.Future[Share] = asyncio.get_running_loop().create_future()
        self._queue.append(Submission(requests, future))
        self._wake.set()
        return await future

    async def run(self) -> None:
        """The writer loop; run it in the runtime's task group."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    self._writing = True
                    try:
                        await self._write_some()
                    finally:
                        self._writing = False
        finally:
            self._closed = True
            for sub in self._queue:
                if not sub.future.done():
                    sub.future.set_exception(BatcherClosed("the runtime is shutting down"))
            self._queue.clear()

    async def _write_now(self, requests: Sequence[Request]) -> Share:
        """Write one submitter's requests at once, in its task (a store that never waits)."""
        self._writing = True
        try:
            result = await self._write(list(requests))
        finally:
            self._writing = False
            if self._queue:
                self._wake.set()  # what queued meanwhile goes in the batcher's next batch
        return _part(result, 0, len(requests))

    async def _write_some(self) -> None:
        taken: list[Submission] = []
        count = 0
        while self._queue and (not taken or count + len(self._queue[0].requests) <= self._max):
            sub = self._queue.pop(0)
            taken.append(sub)
            count += len(sub.requests)
        try:
            result = await self._write([r for sub in taken for r in sub.requests])
        except Exception as error:
            for sub in taken:
                if not sub.future.done():
                    sub.future.set_exception(error)
            return
        offset = 0
        for sub in taken:
            n = len(sub.requests)
            if not sub.future.done():
                sub.future.set_result(_part(result, offset, n))
            offset += n

    async def _write(self, requests: list[Request]) -> BatchResult:
        """One ``create_batch``, shielded from cancellation (a write once sent is seen
        through), timed for the observer."""
        started = time.perf_counter()
        if self._inline:  # it never suspends, so no cancellation can reach it
            result = await self._store.create_batch(requests)
        else:
            with anyio.CancelScope(shield=True):
                result = await self._store.create_batch(requests)
        if self._observe is not None:
            self._observe(len(requests), time.perf_counter() - started)
        return result


def _part(result: BatchResult, offset: int, n: int) -> Share:
    """One submitter's share of a batch's result: its ``n`` requests from ``offset``."""
    end = offset + n
    emitted = result.emitted[offset:end] if result.emitted else [[]] * n
    return Share(
        list(result.outcomes[offset:end]),
        list(result.annotations[offset:end]),
        list(emitted),
        result.leases,
    )
