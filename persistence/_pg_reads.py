"""The read queries of the PostgreSQL store, one query each, for ``PostgresStore`` to delegate to.

Each function borrows a connection from the store's lender (``PostgresStore._connection``:
the primary connection if it is free, else one from the pool, with the driver's failures
mapped to store errors) for its query alone, and decodes the rows once it has given the
connection back. Rows are decoded with :mod:`persistence.rows`, so bad rows raise
``CorruptedDataError`` naming the run and event. The SQL is in :mod:`persistence._pg_schema`;
the reads behind ``dormant_runs`` are in :mod:`persistence._pg_dormant`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TypeAlias

from . import _pg_schema as sql
from ._pg_batch import Conn
from .errors import HookNotFoundError, RunNotFoundError, StepNotFoundError
from .events import Event
from .records import (
    AnnotationFilter,
    AnnotationRecord,
    CommittedEvent,
    Page,
    StreamChunk,
    StreamInfo,
)
from .rows import (
    E,
    annotation_from_body,
    entity_from_body,
    event_from_row,
    run_from_row,
    step_from_row,
)
from .state import Hook, Run, RunStatus, Step, Wait
from .views import page_after, payload_target, recorded_by, statuses

Lend: TypeAlias = Callable[[], AbstractAsyncContextManager[Conn]]
"""Lends a connection for one query (``PostgresStore._connection``)."""


async def list_events(lend: Lend, run_id: str, after: str | None, limit: int | None) -> Page[Event]:
    """A run's events by event id, after ``after``; the cursor is set if more remain."""
    fetch = None if limit is None else limit + 1
    async with lend() as conn:
        rows = await conn.fetch(sql.LIST_EVENTS, run_id, after or "", fetch)
    return page_after([event_from_row(*row) for row in rows], limit, lambda e: e.event_id)


async def get_run(lend: Lend, run_id: str) -> Run:
    """The run, or ``RunNotFoundError``."""
    async with lend() as conn:
        row = await conn.fetchrow(sql.GET_RUN, run_id)
    if row is None:
        raise RunNotFoundError(run_id)
    return run_from_row(row[0], row[1], run_id)


async def list_runs(
    lend: Lend,
    status: RunStatus | Sequence[RunStatus] | None,
    workflow_name: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Run]:
    """Runs by run id descending, filtered, ``limit`` of them after ``cursor``."""
    wanted = statuses(status)
    query, args = sql.list_runs_query(
        None if wanted is None else sorted(s.value for s in wanted),
        workflow_name,
        cursor,
        limit,
    )
    async with lend() as conn:
        rows = await conn.fetch(query, *args)
    runs = [run_from_row(body, created, run_id) for run_id, body, created in rows]
    return page_after(runs, limit, lambda r: r.run_id)


async def get_step(lend: Lend, run_id: str, step_id: str) -> Step:
    """The step, or ``StepNotFoundError``."""
    async with lend() as conn:
        row = await conn.fetchrow(sql.GET_STEP, run_id, step_id)
    if row is None:
        raise StepNotFoundError(run_id, step_id)
    return step_from_row(row[0], row[1], run_id)


async def _listed(lend: Lend, kind: type[E], query: str, run_id: str) -> list[E]:
    async with lend() as conn:
        bodies = [row[0] for row in await conn.fetch(query, run_id)]
    return [entity_from_body(kind, body, run_id) for body in bodies]


async def list_steps(lend: Lend, run_id: str) -> list[Step]:
    """A run's steps by generation and position (inputs from their ``step_created``)."""
    async with lend() as conn:
        rows = await conn.fetch(sql.LIST_STEPS, run_id)
    return [step_from_row(body, created, run_id) for body, created in rows]


async def list_waits(lend: Lend, run_id: str) -> list[Wait]:
    """A run's waits by generation and position."""
    return await _listed(lend, Wait, sql.LIST_WAITS, run_id)


async def list_hooks(lend: Lend, run_id: str) -> list[Hook]:
    """A run's hooks by generation and position."""
    return await _listed(lend, Hook, sql.LIST_HOOKS, run_id)


async def due_waits(lend: Lend, before: datetime, limit: int) -> list[Wait]:
    """Waiting waits with ``resume_at <= before``, by resume time, run id, wait id."""
    async with lend() as conn:
        rows = await conn.fetch(sql.DUE_WAITS, before, limit)
    return [entity_from_body(Wait, body, run_id) for run_id, body in rows]


async def get_hook(lend: Lend, token: str) -> Hook:
    """The live hook holding ``token``, or ``HookNotFoundError``."""
    async with lend() as conn:
        row = await conn.fetchrow(sql.GET_HOOK, token)
    if row is None:
        raise HookNotFoundError(token)
    return entity_from_body(Hook, row["body"], row["run_id"])


async def resolve_hook(lend: Lend, token: str, key: str | None) -> Hook | str | None:
    """Where a payload for ``token`` goes (``Store.resolve_hook``), in one query."""
    return payload_target(await _hooks_of_token(lend, token), key)


async def find_payload(lend: Lend, token: str, key: str) -> str | None:
    """The run whose hook holding ``token`` recorded a payload with idempotency ``key``."""
    return recorded_by(await _hooks_of_token(lend, token), key)


async def _hooks_of_token(lend: Lend, token: str) -> list[Hook]:
    """Every hook that held ``token``, live or not."""
    async with lend() as conn:
        rows = await conn.fetch(sql.HOOKS_OF_TOKEN, token)
    return [entity_from_body(Hook, row["body"], row["run_id"]) for row in rows]


async def read_chunks(
    lend: Lend, run_id: str, stream: str, start_index: int, limit: int
) -> list[StreamChunk]:
    """Chunks from ``start_index``, the close marker included, at most ``limit``."""
    async with lend() as conn:
        rows = await conn.fetch(sql.READ_CHUNKS, run_id, stream, start_index, limit)
    return [StreamChunk(run_id, stream, idx, bytes(data), eof) for idx, data, eof in rows]


async def stream_info(lend: Lend, run_id: str, stream: str) -> StreamInfo:
    """The last data index (-1 if none) and whether the close marker is written."""
    async with lend() as conn:
        row = await conn.fetchrow(sql.STREAM_TAIL, run_id, stream)
    if row is None:
        return StreamInfo(-1, False)
    return StreamInfo(row["idx"] - 1 if row["eof"] else row["idx"], row["eof"])


async def list_annotations(
    lend: Lend, run_id: str, filters: AnnotationFilter | None
) -> list[AnnotationRecord]:
    """A run's annotations passing every filter, by creation time then id."""
    f = filters or AnnotationFilter()
    query, args = sql.annotations_query(
        run_id,
        f.key,
        f.key_prefix,
        f.scope,
        (f.scope_id,) if f.match_scope_id else None,
        f.actor_id,
        f.actor_kind,
        f.attempt,
        f.since,
        f.until,
        f.limit,
    )
    async with lend() as conn:
        rows = await conn.fetch(query, *args)
    return [annotation_from_body(body, row_run) for row_run, body in rows]


async def read_committed(
    lend: Lend, after: int, limit: int, types: Sequence[str] | None
) -> list[CommittedEvent]:
    """Events of all runs by commit position (``seq``) after ``after``."""
    wanted = list(types) if types is not None else None
    async with lend() as conn:
        rows = await conn.fetch(sql.READ_COMMITTED, after, limit, wanted)
    return [CommittedEvent(row[0], event_from_row(*row[1:])) for row in rows]


async def get_cursor(lend: Lend, name: str) -> int:
    """A subscriber's stored position, 0 if none."""
    async with lend() as conn:
        position = await conn.fetchval(sql.GET_CURSOR, name)
    return 0 if position is None else int(position)


async def last_position(lend: Lend) -> int:
    """The highest committed position (positions follow commit order; gaps allowed)."""
    async with lend() as conn:
        position = await conn.fetchval(sql.LAST_POSITION)
    return int(position)
