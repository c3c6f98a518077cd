"""SqliteStore: the Store protocol on one SQLite file (``sqlite:///path.db``), the default store.

One writer thread owns the only writing connection and runs every write as a
``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction: it loads what the batch planner needs (or
takes it from the states it keeps of the runs it wrote lately, see
:mod:`persistence._sqlite_cache`), plans, writes the plan and commits. A reader thread owns
a second connection; in WAL mode its reads run beside the writer's transactions. Coroutines
hand a job to a thread and await a future that the thread resolves on the event loop with
``call_soon_threadsafe``, so the loop never waits on SQLite. Notifications of a commit are
sent on the loop before the caller resumes. Stream appends queued together are committed
together (each in a savepoint of one transaction), as the batcher does for events. With
``?writer=loop`` the writer's jobs run on the event loop's thread instead
(:mod:`persistence._sqlite_inline`): no hand-off, but the loop waits out every transaction.

Several processes (or several stores in one process) may share a file: SQLite's write lock
serialises their transactions, and ``busy_timeout`` bounds how long a writer waits for it.
The threads are in :mod:`persistence._sqlite_thread`, the jobs they run in
:mod:`persistence._sqlite_jobs`, the connections and SQL in :mod:`persistence._sqlite_schema`,
the tables and their migrations in :mod:`persistence._sqlite_migrations`, and what SQLite's
failures mean to the caller (retry, fix the configuration, free space) in
:mod:`persistence._sqlite_errors`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from . import _sqlite_dormant as dormant
from . import _sqlite_errors as errors
from . import _sqlite_jobs as jobs
from . import _sqlite_leases as leases
from . import _sqlite_migrations as migrations
from . import _sqlite_reads as reads
from . import _sqlite_schema as sql
from ._sqlite_cache import RunCache
from ._sqlite_inline import LoopWriter
from ._sqlite_thread import Grouped, ThreadWorker
from .batch import Request
from .dormant import Dormant
from .errors import StoreError, StoreUnavailableError
from .events import Event, check_owner
from .notify import Notifier
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


class SqliteStore(StoreBase):
    """A Store in one SQLite file; survives restarts and may be shared by several processes.

    URL options: ``synchronous`` = ``full`` (default) | ``normal`` | ``off``,
    ``busy_timeout`` in milliseconds (default 5000) and ``writer`` = ``thread`` (default) |
    ``loop`` (transactions on the event loop's thread, see :mod:`persistence._sqlite_inline`),
    e.g. ``sqlite:///.actorflow/actorflow.db?synchronous=normal``. A write whose caller is
    cancelled once it was handed to the writer thread may still commit, as with any database
    client; its notifications are sent all the same.
    """

    claims_in_write = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.options = sql.parse_url(url)
        self.path = self.options.path
        self.schema_version = 0
        self.notifier = Notifier()
        self._writer: ThreadWorker | LoopWriter | None = None
        self._reader: ThreadWorker | None = None
        self._cache = RunCache()  # the writer thread's alone
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self, *, create: bool = True) -> None:
        """Open the file (creating it and its directory), switch it to WAL and migrate it.

        With ``create=False`` a missing file, or one without actorflow's schema, is a
        ``StoreConfigurationError``, and neither the file nor its directory is created.
        """
        async with self._lock:
            if self._writer is not None:
                return
            writer: ThreadWorker | LoopWriter
            if self.options.writer == "loop":
                writer = LoopWriter(self._connector(writer=True, create=create), *self._sinks())
            else:
                writer = self._worker("writer", writer=True, create=create)
            reader = self._worker("reader", writer=False, create=create)
            try:
                await writer.start()
                self.schema_version = await writer.call(migrations.migrate, self.path)
                await reader.start()
            except BaseException:
                await writer.stop()
                raise
            self._cache = RunCache()
            self._writer, self._reader = writer, reader

    async def close(self) -> None:
        """Let queued jobs finish, then close both connections and end the threads."""
        async with self._lock:
            writer, reader = self._writer, self._reader
            self._writer = self._reader = None
            for worker in (reader, writer):
                if worker is not None:
                    await worker.stop()

    def _worker(self, role: str, *, writer: bool, create: bool) -> ThreadWorker:
        connect = self._connector(writer=writer, create=create)
        groups: dict[Callable[..., Any], Grouped] = (
            {jobs.append_chunks: jobs.append_chunk_groups} if writer else {}
        )
        return ThreadWorker(f"actorflow-sqlite-{role}", connect, *self._sinks(), groups)

    def _connector(self, *, writer: bool, create: bool) -> Callable[[], sqlite3.Connection]:
        def connect() -> sqlite3.Connection:
            try:
                return sql.connect(self.options, writer=writer, create=create)
            except OSError as exc:
                raise errors.directory_error(exc, self.path) from exc

        return connect

    def _sinks(self) -> tuple[Notifier, Callable[[sqlite3.Error], BaseException]]:
        """Where a writer sends its commits' notifications, and how it maps SQLite's errors."""
        return self.notifier, self._store_error

    def _store_error(self, exc: sqlite3.Error) -> StoreError:
        """A SQLite failure as a store error naming the file (see ``_sqlite_errors``)."""
        return errors.store_error(exc, self.path, self.options.busy_timeout_ms)

    def _w(self) -> ThreadWorker | LoopWriter:
        if self._writer is None:
            raise StoreUnavailableError(f"SQLite store {self.path} is not open; call open()")
        return self._writer

    def _r(self) -> ThreadWorker:
        if self._reader is None:
            raise StoreUnavailableError(f"SQLite store {self.path} is not open; call open()")
        return self._reader

    async def connection_settings(self) -> dict[str, object]:
        """The writer connection's journal mode, synchronous level and busy timeout."""
        return await self._w().call(reads.settings)

    # -- writes ------------------------------------------------------------------------------

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        """Append events and annotations in one transaction (see ``Store.create_batch``)."""
        return await self._w().write(jobs.write_batch, self._cache, list(requests))

    async def append_chunks(
        self, run_id: str, stream: str, start_index: int, chunks: Sequence[bytes], close: bool
    ) -> StreamInfo:
        """Append chunks at the stream's next index, optionally closing it, atomically."""
        return await self._w().write(
            jobs.append_chunks, run_id, stream, start_index, list(chunks), close
        )

    async def save_cursor(self, name: str, position: int) -> None:
        """Store a subscriber's position durably."""
        await self._w().write(jobs.save_cursor, name, position)

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
        """Take up to ``limit`` claimable runs (see ``Store.claim_runs``): read on the reader
        thread, taken on the writer."""
        check_owner(owner)
        found, fresh = await self._r().call(
            leases.claimable, lease_seconds, limit, workflows, list(dead), after
        )
        if not found and not fresh:
            return []  # an empty sweep never waits for the writer
        return await self._w().write(
            leases.take_leases, self._cache, owner, found, lease_seconds, list(dead), fresh
        )

    async def dormant_runs(self, run_ids: Sequence[str]) -> dict[str, Dormant]:
        """Of these runs, those that only wait (see ``Store.dormant_runs``)."""
        return await self._r().call(dormant.dormant_runs, list(run_ids))

    async def claim_each(
        self, owner: str, run_ids: Sequence[str], lease_seconds: float
    ) -> list[Lease]:
        """Take (or keep) these runs' leases unless another owner's is live, in one
        transaction (see ``Store.claim_each``)."""
        check_owner(owner)
        return await self._w().write(
            leases.claim_each, self._cache, owner, list(run_ids), lease_seconds
        )

    async def renew_leases(self, owner: str, lease_seconds: float) -> set[str]:
        """Extend every lease ``owner`` holds; the runs it still holds."""
        return await self._w().write(leases.renew_leases, owner, lease_seconds)

    async def release_leases(self, owner: str, run_ids: Sequence[str]) -> None:
        """Give up these leases."""
        await self._w().write(leases.release_leases, owner, list(run_ids))

    async def beat(self, worker: WorkerInfo) -> None:
        """Record that a worker is alive (see ``Store.beat``)."""
        await self._w().write(leases.beat, worker)

    async def list_workers(self) -> list[WorkerInfo]:
        """The workers whose last beat has not expired."""
        return await self._r().call(leases.list_workers)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker."""
        await self._w().write(leases.remove_worker, worker_id)

    # -- reads -------------------------------------------------------------------------------

    async def list_events(
        self, run_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[Event]:
        """A run's events in log order, after the event id ``after``."""
        return await self._r().call(reads.list_events, run_id, after, limit)

    async def get_run(self, run_id: str) -> Run:
        """The run, or ``RunNotFoundError``."""
        return await self._r().call(reads.get_run, run_id)

    async def list_runs(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Run]:
        """Runs, newest first, filtered by status and workflow name."""
        return await self._r().call(reads.list_runs, status, workflow_name, limit, cursor)

    async def get_step(self, run_id: str, step_id: str) -> Step:
        """The step, or ``StepNotFoundError``."""
        return await self._r().call(reads.get_step, run_id, step_id)

    async def list_steps(self, run_id: str) -> list[Step]:
        """A run's steps in call order."""
        return await self._r().call(reads.list_steps, run_id)

    async def list_waits(self, run_id: str) -> list[Wait]:
        """A run's waits in call order."""
        return await self._r().call(reads.list_waits, run_id)

    async def due_waits(self, before: datetime, limit: int = 1000) -> list[Wait]:
        """Pending waits due at or before ``before``, earliest first."""
        return await self._r().call(reads.due_waits, before, limit)

    async def get_hook(self, token: str) -> Hook:
        """The live hook holding ``token``, or ``HookNotFoundError``."""
        return await self._r().call(reads.get_hook, token)

    async def list_hooks(self, run_id: str) -> list[Hook]:
        """A run's hooks in call order, live or not."""
        return await self._r().call(reads.list_hooks, run_id)

    async def resolve_hook(self, token: str, idempotency_key: str | None) -> Hook | str | None:
        """Where a payload for ``token`` goes: its live hook, or the run that recorded the
        key, or None (one query on the reader thread)."""
        return await self._r().call(reads.resolve_hook, token, idempotency_key)

    async def find_payload(self, token: str, idempotency_key: str) -> str | None:
        """The run whose hook holding ``token`` recorded a payload with this key, or None."""
        return await self._r().call(reads.find_payload, token, idempotency_key)

    async def read_chunks(
        self, run_id: str, stream: str, start_index: int = 0, limit: int = 1000
    ) -> list[StreamChunk]:
        """Chunks from ``start_index`` on, in index order, the close marker included."""
        return await self._r().call(reads.read_chunks, run_id, stream, start_index, limit)

    async def stream_info(self, run_id: str, stream: str) -> StreamInfo:
        """The stream's tail index (-1 when empty) and whether it is closed."""
        return await self._r().call(reads.stream_info, run_id, stream)

    async def list_annotations(
        self, run_id: str, filters: AnnotationFilter | None = None
    ) -> list[AnnotationRecord]:
        """A run's annotations, by creation time then id, filtered."""
        return await self._r().call(reads.list_annotations, run_id, filters or AnnotationFilter())

    async def read_committed(
        self, after: int, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[CommittedEvent]:
        """Events of all runs in commit order, from position ``after`` (exclusive)."""
        wanted = list(types) if types is not None else None
        return await self._r().call(reads.read_committed, after, limit, wanted)

    async def get_cursor(self, name: str) -> int:
        """A subscriber's stored position (0 if it has none)."""
        return await self._r().call(reads.get_cursor, name)

    async def last_position(self) -> int:
        """The position of the last committed event (0 if none)."""
        return await self._r().call(reads.last_position)
