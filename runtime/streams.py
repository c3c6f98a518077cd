"""Durable streams: steps write chunks, clients read them from any index, live.

A step gets a writer with ``get_writable(namespace=None)``. ``write`` does not wait for its
own commit: chunks are buffered and appended in the background, so many small chunks cost
few commits; ``close()`` and the end of the step flush. Chunks are stored with their index;
a retried step continues the same stream after the chunks the failed attempt wrote.

Closing a writer stores its chunks and ends the stream *with the step*: the close is
recorded in the step's ``step_completed`` (or ``step_failed``) and applied once that is
stored. So an attempt that closed its stream and then died before its completion was stored
does not leave the stream closed under its retry; the retry continues it (readers see the
failed attempt's chunks too: streams are at least once).

``Run.stream()`` yields chunks from an index (negative counts from the end) and follows the
live tail until the stream is closed or the run ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Self

from persistence import Store, codec
from persistence.errors import (
    EntityConflictError,
    RunNotFoundError,
    StoreUnavailableError,
    StreamClosedError,
)
from persistence.notify import end_topic, stream_topic

from .api import OutsideWorkflowError
from .context import current_step


class StreamWriter:
    """Writes a run's stream from a step; use as ``async with get_writable() as w``."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        namespace: str,
        on_close: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self.run_id = run_id
        self.namespace = namespace
        self._on_close = on_close
        self._buffer: list[bytes] = []
        self._next: int | None = None
        self._closed = False
        self._flusher: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.flush()

    async def write(self, value: Any) -> None:
        """Queue a chunk (bytes are kept as they are; other values are encoded)."""
        if self._closed:
            raise StreamClosedError(self.run_id, self.namespace)
        self._raise_error()
        self._buffer.append(codec.encode(value, where="a stream chunk"))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._drain(close=False))

    async def flush(self) -> None:
        """Wait until every chunk written so far is stored."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._buffer:
            await self._drain(close=False)
        self._raise_error()

    async def close(self) -> None:
        """Store what is buffered and end the stream (with the step, in a step); writing
        after this raises ``StreamClosedError``."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        if self._on_close is not None:
            self._on_close(self.namespace)  # closed when the step's end is stored
            return
        await self._drain(close=True)
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    async def _drain(self, close: bool) -> None:
        while self._buffer or close:
            chunks, self._buffer = self._buffer, []
            try:
                await self._append(chunks, close)
            except Exception as error:
                self._error = error
                self._buffer.clear()
                return
            close = False

    async def _append(self, chunks: list[bytes], close: bool) -> None:
        for _ in range(20):
            if self._next is None:
                info = await self._store.stream_info(self.run_id, self.namespace)
                if info.closed:
                    self._closed = True
                    raise StreamClosedError(self.run_id, self.namespace)
                self._next = info.tail_index + 1
            try:
                info = await self._store.append_chunks(
                    self.run_id, self.namespace, self._next, chunks, close
                )
            except EntityConflictError:  # another writer appended: continue after it
                self._next = None
                continue
            self._next = info.tail_index + 1
            return
        raise EntityConflictError(
            f"could not append to stream {self.namespace!r}: too many writers"
        )


def get_writable(namespace: str | None = None) -> StreamWriter:
    """The writer of the current run's stream ``namespace`` (in a step only)."""
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(f"a stream namespace is a string, got {namespace!r}")
    step = current_step()
    if step is None:
        raise OutsideWorkflowError(
            "get_writable() can only be called in a step: workflow code passes the namespace "
            "(a string) to the steps that write it"
        )
    key = namespace or ""
    writer = step.streams.get(key)
    if writer is None:
        writer = StreamWriter(step.runtime.store, step.workflow.run_id, key, step.closes.append)
        step.streams[key] = writer
    assert isinstance(writer, StreamWriter)
    return writer


async def close_streams(store: Store, run_id: str, namespaces: Sequence[str]) -> None:
    """End these streams of a run (idempotent), retrying while the store is unavailable."""
    delay = 0.05
    for namespace in namespaces:
        while True:
            try:
                info = await store.stream_info(run_id, namespace)
                if not info.closed:
                    await store.append_chunks(run_id, namespace, info.tail_index + 1, [], True)
                break
            except (StreamClosedError, RunNotFoundError):
                break
            except EntityConflictError:
                continue  # a chunk came in between: close after it
            except StoreUnavailableError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


async def read_stream(
    store: Store, run_id: str, namespace: str, start_index: int, poll: float
) -> AsyncIterator[Any]:
    """Yield a stream's chunks from ``start_index``, following the tail until it ends."""
    index = start_index
    if index < 0:
        info = await store.stream_info(run_id, namespace)
        index = max(0, info.tail_index + 1 + index)
    topics = (stream_topic(run_id, namespace), end_topic(run_id))
    ended = False
    while True:
        seen = {topic: store.notifier.version(topic) for topic in topics}
        chunks = await store.read_chunks(run_id, namespace, index, 1000)
        for chunk in chunks:
            if chunk.eof:
                return
            yield codec.decode(chunk.data, where=f"chunk {chunk.index} of stream {namespace!r}")
            index = chunk.index + 1
        if chunks:
            continue
        if ended:
            return
        ended = (await store.get_run(run_id)).status.terminal
        if not ended:
            await store.notifier.wait_any(seen, poll)
