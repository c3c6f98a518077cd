"""Appending to a stream in PostgreSQL: one statement, and what its refusal means.

``APPEND_CHUNKS`` (:mod:`persistence._pg_schema`) checks the run and the stream's tail,
inserts the chunks at the next index (a close adds an eof row) and notifies the stream's
topic, all in one round trip. A unique violation means another writer took the index first
(or closed the stream). The store keeps what is its own: the payload naming the topic, and
waking its own waiters once the append is committed.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from . import _pg_schema as sql
from ._pg_reads import Lend
from .errors import EntityConflictError, RunNotFoundError, StreamClosedError
from .records import StreamInfo


async def append_chunks(
    lend: Lend,
    run_id: str,
    stream: str,
    start_index: int,
    chunks: Sequence[bytes],
    close: bool,
    channel: str,
    payload: str,
) -> StreamInfo:
    """Append ``chunks`` at ``start_index``, the stream's next index, and ``NOTIFY`` ``payload``
    on ``channel``; refused if the run is missing, the stream closed or the index taken."""
    data = [bytes(c) for c in chunks]
    flags = [False] * len(data)
    if close:
        data.append(b"")
        flags.append(True)
    async with lend() as conn:
        try:
            row = await conn.fetchrow(
                sql.APPEND_CHUNKS,
                run_id,
                stream,
                start_index,
                data,
                flags,
                channel,
                payload,
            )
        except asyncpg.UniqueViolationError:
            tail = await conn.fetchrow(sql.STREAM_TAIL, run_id, stream)
            if tail is not None and tail["eof"]:
                raise StreamClosedError(run_id, stream) from None
            raise EntityConflictError(
                f"chunk {start_index} of stream {stream!r} of run {run_id!r} was written "
                "by another writer first"
            ) from None
    assert row is not None
    if not row["run_ok"]:
        raise RunNotFoundError(run_id)
    if row["closed"]:
        raise StreamClosedError(run_id, stream)
    if row["last_idx"] + 1 != start_index:
        raise EntityConflictError(
            f"chunk {start_index} of stream {stream!r} of run {run_id!r} is not the next "
            f"one ({row['last_idx'] + 1})"
        )
    return StreamInfo(start_index + len(chunks) - 1, close)
