"""PostgresStore: the Store protocol on PostgreSQL through asyncpg (``postgresql://...``).

One schema per store (``?schema=``, default ``actorflow``; ``min_size``/``max_size`` size the
pool), created and migrated on open under an advisory lock, so processes opening a new
schema at once migrate it once. Batches are written by :class:`_pg_batch.BatchWriter`: one
guarded statement on the hot path, events inserted under a schema-wide advisory lock held to
commit, so ``seq`` (a committed event's position) follows commit order across processes.
The reads are in :mod:`persistence._pg_reads`, a stream's append in
:mod:`persistence._pg_streams`, leases and workers in :mod:`persistence._pg_leases`.

Each write ``pg_notify``s the topics it changed on the schema's channel. The store's primary
connection listens on that channel and serves any operation that comes while it is free
(others take a pool connection), so a store's own notifications come back on the connection
that sent them instead of waking another backend. Notifications from other processes become
wake-ups of :attr:`PostgresStore.notifier`; if the primary connection dies, every waiter is
woken and the store listens again in the background.

Failures are typed by what the caller can do: a server out of reach or out of connections is
``StoreUnavailableError``; a missing database or role, a bad password or a missing privilege
is ``StoreConfigurationError``; a full disk is ``StoreFullError``. Messages name the
database, server and role, never the password.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

import anyio
import asyncpg

from . import _pg_dormant as pg_dormant
from . import _pg_errors as errors
from . import _pg_leases as pg_leases
from . import _pg_migrations as migrations
from . import _pg_reads as reads
from . import _pg_schema as sql
from . import _pg_streams as pg_streams
from ._pg_batch import BatchWriter, Conn
from .batch import Request
from .dormant import Dormant
from .errors import (
    InvalidStoreURLError,
    StoreError,
    StoreUnavailableError,
)
from .events import Event, check_owner
from .notify import FOREIGN_TOPIC, Notifier, stream_topic
from .records import (
    AnnotationFilter,
    AnnotationRecord,
    BatchResult,
    CommittedEvent,
    Lease,
    Page,
    StreamChunk,
    StreamInfo,
    WorkerInfo,
)
from .state import Hook, Run, RunStatus, Step, Wait
from .store import StoreBase

_STATEMENT_CACHE: Final = 512


async def _keep_session(_: object) -> None:
    """Pool reset: sessions are never changed, so nothing to reset (saves a round trip)."""


class PostgresStore(StoreBase):
    """A Store in a PostgreSQL schema; processes sharing the schema share the store."""

    claims_in_write = True
    poll_interval = 5.0
    """Every commit is notified to every process (LISTEN/NOTIFY; a listener that lost its
    connection wakes everyone once it listens again): the poll is only a safety net."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.schema_version = 0
        self.notifier = Notifier()
        self._options = sql.parse_options(url)
        self.schema = self._options.schema
        self._where = self._options.where
        self._origin = uuid.uuid4().hex[:12]
        self._batches = BatchWriter(
            self._where,
            self._options.channel,
            sql.lock_key(f"actorflow:events:{self.schema}"),
            self._origin,
        )
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._primary: asyncpg.Connection[asyncpg.Record] | None = None
        self._primary_busy = False
        self._relisten: asyncio.Task[None] | None = None
        self._open_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, *, create: bool = True) -> None:
        """Connect, create the schema and run pending migrations; then listen. Idempotent.

        With ``create=False`` a schema that does not exist is a ``StoreConfigurationError``
        and is not created; one that exists opens as usual.
        """
        async with self._open_lock:
            if self._pool is not None:
                return
            try:
                pool = await asyncpg.create_pool(
                    self._options.dsn,
                    min_size=self._options.min_size,
                    max_size=self._options.max_size,
                    server_settings=self._options.settings,
                    reset=_keep_session,
                    timeout=self._options.connect_timeout,
                    statement_cache_size=_STATEMENT_CACHE,
                )
            except (ValueError, asyncpg.ClientConfigurationError) as exc:
                raise InvalidStoreURLError(f"malformed PostgreSQL URL: {exc}") from None
            except Exception as exc:
                raise self._open_error(exc) from exc
            try:
                await self._migrate(pool, create)
                await self._connect_primary()
            except BaseException as exc:
                pool.terminate()
                if isinstance(exc, Exception) and not isinstance(exc, StoreError):
                    raise self._open_error(exc) from exc
                raise
            self._pool = pool

    async def close(self) -> None:
        """Stop listening and close the connections; drops nothing. Idempotent."""
        async with self._open_lock:
            pool, self._pool = self._pool, None
            if self._relisten is not None:
                self._relisten.cancel()
                await asyncio.gather(self._relisten, return_exceptions=True)
                self._relisten = None
            primary, self._primary = self._primary, None
            if primary is not None:
                primary.remove_termination_listener(self._primary_lost)
                try:
                    await asyncio.wait_for(primary.close(), 5)
                except Exception:
                    primary.terminate()
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), 10)
                except Exception:
                    pool.terminate()
            self._batches.clear()

    async def _migrate(self, pool: asyncpg.Pool[asyncpg.Record], create: bool) -> None:
        """Bring the schema to the current version (see ``_pg_migrations.migrate``)."""
        async with pool.acquire() as conn:
            version = await migrations.migrate(
                conn, self.schema, self._options.target, create=create
            )
        self.schema_version = version

    async def _connect_primary(self) -> None:
        """Open the primary connection: it listens, and serves whatever comes while it is free.

        Listening on the connection that also writes means this store's own notifications
        come back on the connection that sent them, with no wake-up of another backend.
        """
        conn = await asyncpg.connect(
            self._options.dsn,
            server_settings=self._options.settings,
            timeout=self._options.connect_timeout,
            statement_cache_size=_STATEMENT_CACHE,
        )
        try:
            await conn.add_listener(self._options.channel, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._primary_lost)
        self._primary = conn

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        origin, _, rest = str(payload).partition("\n")
        if origin == self._origin:
            return
        try:
            topics = json.loads(rest)
        except ValueError:
            topics = None
        if isinstance(topics, list):
            self.notifier.notify([*(str(t) for t in topics), FOREIGN_TOPIC])
        else:
            self.notifier.notify_all()

    def _primary_lost(self, conn: object) -> None:
        """The primary connection died: wake everyone, then listen again in the background."""
        if conn is not self._primary:
            return
        self._primary = None
        self.notifier.notify_all()
        if self._pool is not None and self._relisten is None:
            self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        delay = 0.05
        try:
            while self._pool is not None:
                try:
                    await self._connect_primary()
                except Exception:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                self.notifier.notify_all()  # whatever happened while we were deaf
                return
        finally:
            self._relisten = None

    # -- connections and errors --------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """The primary connection if it is free, else one from the pool."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError(f"the PostgreSQL store at {self._where} is not open")
        primary = self._primary
        try:
            if primary is not None and not self._primary_busy and not primary.is_closed():
                self._primary_busy = True
                try:
                    yield primary
                finally:
                    self._primary_busy = False
                    if primary.is_in_transaction():
                        primary.terminate()  # left mid-transaction (cancelled): start afresh
            else:
                async with pool.acquire() as conn:
                    yield conn
        except Exception as exc:
            error = self._store_error(exc)
            if error is None:
                raise
            raise error from exc

    def _store_error(self, exc: BaseException) -> StoreError | None:
        """``exc`` as the store error it means to the caller (``_pg_errors``), or None."""
        return errors.store_error(exc, self._options.target, self._where)

    def _open_error(self, exc: Exception) -> StoreError:
        """What failed opening the store: its store error, else the server is out of reach."""
        return errors.open_error(exc, self._options.target, self._where)

    # -- writes ------------------------------------------------------------------------------

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        """Decide and write ``requests`` in one transaction (see ``_pg_batch``)."""
        requests = list(requests)
        if not requests:
            return BatchResult(outcomes=[], annotations=[])
        async with self._connection() as conn:
            plan = await self._batches.write(conn, requests)
        self.notifier.notify(plan.topics())
        return plan.result()

    # -- streams -----------------------------------------------------------------------------

    async def append_chunks(
        self, run_id: str, stream: str, start_index: int, chunks: Sequence[bytes], close: bool
    ) -> StreamInfo:
        """Append at the stream's next index in one statement; a close adds an eof row."""
        topic = stream_topic(run_id, stream)
        payload = self._batches.payloads([topic])[0]
        info = await pg_streams.append_chunks(
            self._connection,
            run_id,
            stream,
            start_index,
            chunks,
            close,
            self._options.channel,
            payload,
        )
        self.notifier.notify([topic])
        return info

    async def read_chunks(
        self, run_id: str, stream: str, start_index: int = 0, limit: int = 1000
    ) -> list[StreamChunk]:
        return await reads.read_chunks(self._connection, run_id, stream, start_index, limit)

    async def stream_info(self, run_id: str, stream: str) -> StreamInfo:
        return await reads.stream_info(self._connection, run_id, stream)

    async def save_cursor(self, name: str, position: int) -> None:
        async with self._connection() as conn:
            await conn.execute(sql.SAVE_CURSOR, name, position)

    # -- reads -------------------------------------------------------------------------------

    async def list_events(
        self, run_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[Event]:
        return await reads.list_events(self._connection, run_id, after, limit)

    async def get_run(self, run_id: str) -> Run:
        return await reads.get_run(self._connection, run_id)

    async def list_runs(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Run]:
        return await reads.list_runs(self._connection, status, workflow_name, limit, cursor)

    async def dormant_runs(self, run_ids: Sequence[str]) -> dict[str, Dormant]:
        """Of these runs, those that only wait (see ``Store.dormant_runs``)."""
        async with self._connection() as conn:
            return await pg_dormant.dormant_runs(conn, list(run_ids))

    async def get_step(self, run_id: str, step_id: str) -> Step:
        return await reads.get_step(self._connection, run_id, step_id)

    async def list_steps(self, run_id: str) -> list[Step]:
        return await reads.list_steps(self._connection, run_id)

    async def list_waits(self, run_id: str) -> list[Wait]:
        return await reads.list_waits(self._connection, run_id)

    async def list_hooks(self, run_id: str) -> list[Hook]:
        return await reads.list_hooks(self._connection, run_id)

    async def due_waits(self, before: datetime, limit: int = 1000) -> list[Wait]:
        return await reads.due_waits(self._connection, before, limit)

    async def get_hook(self, token: str) -> Hook:
        return await reads.get_hook(self._connection, token)

    async def resolve_hook(self, token: str, idempotency_key: str | None) -> Hook | str | None:
        """Where a payload for ``token`` goes: its live hook, or the run that recorded the
        key, or None (one query)."""
        return await reads.resolve_hook(self._connection, token, idempotency_key)

    async def find_payload(self, token: str, idempotency_key: str) -> str | None:
        """The run whose hook holding ``token`` recorded a payload with this key, or None."""
        return await reads.find_payload(self._connection, token, idempotency_key)

    async def list_annotations(
        self, run_id: str, filters: AnnotationFilter | None = None
    ) -> list[AnnotationRecord]:
        return await reads.list_annotations(self._connection, run_id, filters)

    async def read_committed(
        self, after: int, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[CommittedEvent]:
        return await reads.read_committed(self._connection, after, limit, types)

    async def get_cursor(self, name: str) -> int:
        return await reads.get_cursor(self._connection, name)

    # -- leases (the statements and their rows: ``_pg_leases``) -------------------------------

    async def claim_runs(
        self,
        owner: str,
        lease_seconds: float,
        limit: int = 100,
        *,
        workflows: Sequence[str] | None = None,
        dead: Sequence[str] = (),
        after: str = "",
    ) -> list[Lease]:
        """Take up to ``limit`` claimable runs (see ``Store.claim_runs``)."""
        check_owner(owner)
        # Seen through once asked, as a write is: cut off mid-way (its worker leaving), the
        # transaction would be reset by the pool and the leases it took left unanswered.
        with anyio.CancelScope(shield=True):
            async with self._connection() as conn:
                leases = await pg_leases.claim_runs(
                    conn, owner, lease_seconds, limit, workflows, dead, after
                )
        self._batches.claimed({lease.run_id: lease.epoch for lease in leases})
        return leases

    async def claim_each(
        self, owner: str, run_ids: Sequence[str], lease_seconds: float
    ) -> list[Lease]:
        """Take (or keep) these runs' leases unless another owner's is live, in one
        statement (see ``Store.claim_each``)."""
        check_owner(owner)
        # Seen through once asked, as claim_runs is: cut off after the server committed it,
        # its leases would be held by nobody who knows of them until the stray check.
        with anyio.CancelScope(shield=True):
            async with self._connection() as conn:
                leases = await pg_leases.claim_each(conn, owner, run_ids, lease_seconds)
        self._batches.claimed({lease.run_id: lease.epoch for lease in leases})
        return leases

    async def renew_leases(self, owner: str, lease_seconds: float) -> set[str]:
        """Extend every lease ``owner`` holds; the runs it still holds."""
        async with self._connection() as conn:
            return await pg_leases.renew_leases(conn, owner, lease_seconds)

    async def release_leases(self, owner: str, run_ids: Sequence[str]) -> None:
        """Give up these leases."""
        async with self._connection() as conn:
            await pg_leases.release_leases(conn, owner, run_ids)

    async def beat(self, worker: WorkerInfo) -> None:
        """Record that a worker is alive (see ``Store.beat``)."""
        async with self._connection() as conn:
            await pg_leases.beat(conn, worker)

    async def list_workers(self) -> list[WorkerInfo]:
        """The workers whose last beat has not expired."""
        async with self._connection() as conn:
            return await pg_leases.list_workers(conn)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker."""
        async with self._connection() as conn:
            await pg_leases.remove_worker(conn, worker_id)

    async def last_position(self) -> int:
        """The highest committed position (positions follow commit order; gaps allowed)."""
        return await reads.last_position(self._connection)
